"""Corpora on disk: VCTK 0.80, VCTK 0.92 and a generic `ROOT/<speaker>/*.wav` layout."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vqconvert.audio import AUDIO_EXTENSIONS
from vqconvert.errors import DataError

LAYOUTS = ("vctk080", "vctk092", "generic")
MICS = ("mic1", "mic2")
UtteranceLike = TypeVar("UtteranceLike")


@dataclass(frozen=True)
class Utterance:
    speaker: str
    utt_id: str
    path: Path
    text: str | None = None

    @property
    def key(self) -> str:
        return f"{self.speaker}/{self.utt_id}"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file() and not path.name.startswith(".")


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_text(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return " ".join(text.split()) or None


def _check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: corpus directory does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: is not a directory")
    return root


def detect_layout(root: str | Path) -> str:
    """ "vctk092" (wav48_silence_trimmed/), "vctk080" (wav48/) or "generic" (<speaker>/<audio>)."""
    root = _check_root(root)
    if (root / "wav48_silence_trimmed").is_dir():
        return "vctk092"
    if (root / "wav48").is_dir():
        return "vctk080"
    for speaker_dir in _subdirs(root):
        if any(_is_audio(p) for p in speaker_dir.rglob("*")):
            return "generic"
    raise DataError(f"{root}: no audio found (expected wav48/, wav48_silence_trimmed/ or <speaker>/*.wav)")


def _scan_vctk080(root: Path) -> list[Utterance]:
    utts = []
    for speaker_dir in _subdirs(root / "wav48"):
        speaker = speaker_dir.name
        for path in sorted(speaker_dir.iterdir()):
            if _is_audio(path):
                text = _read_text(root / "txt" / speaker / f"{path.stem}.txt")
                utts.append(Utterance(speaker, path.stem, path, text))
    return utts


def _scan_vctk092(root: Path, mic: str) -> list[Utterance]:
    utts = []
    suffix = f"_{mic}"
    for speaker_dir in _subdirs(root / "wav48_silence_trimmed"):
        speaker = speaker_dir.name
        for path in sorted(speaker_dir.iterdir()):
            if _is_audio(path) and path.stem.endswith(suffix):
                utt_id = path.stem[: -len(suffix)]
                text = _read_text(root / "txt" / speaker / f"{utt_id}.txt")
                utts.append(Utterance(speaker, utt_id, path, text))
    return utts


def _scan_generic(root: Path) -> list[Utterance]:
    utts = []
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    for speaker_dir in _subdirs(root):
        found: dict[str, Path] = {}
        paths = [
            p
            for p in speaker_dir.rglob("*")
            if _is_audio(p) and not any(x.startswith(".") for x in p.relative_to(speaker_dir).parts)
        ]
        for path in sorted(paths, key=lambda p: (str(p.with_suffix("")), rank[p.suffix.lower()])):
            utt_id = "_".join(path.relative_to(speaker_dir).with_suffix("").parts)
            found.setdefault(utt_id, path)  # a.wav beats a.flac: AUDIO_EXTENSIONS order
        for utt_id, path in found.items():
            utts.append(Utterance(speaker_dir.name, utt_id, path, _read_text(path.with_suffix(".txt"))))
    return utts


def scan_corpus(root: str | Path, mic: str = "mic1", layout: str | None = None) -> list[Utterance]:
    """Every utterance under `root`, sorted by (speaker, utt_id).

    VCTK 0.92 keeps only `mic` files and drops the `_micN` suffix from utt_id. Files that are not
    audio (VCTK's p376_295.raw) are skipped; missing transcripts give text=None.
    """
    if mic not in MICS:
        raise DataError(f"unknown microphone {mic!r}: use {' or '.join(MICS)}")
    root = _check_root(root)
    layout = layout or detect_layout(root)
    if layout == "vctk080":
        utts = _scan_vctk080(root)
    elif layout == "vctk092":
        utts = _scan_vctk092(root, mic)
    elif layout == "generic":
        utts = _scan_generic(root)
    else:
        raise DataError(f"unknown corpus layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if not utts:
        raise DataError(f"{root}: no audio files found in the {layout} layout")
    return sorted(utts, key=lambda u: (u.speaker, u.utt_id))


def scan_corpora(roots: Sequence[str | Path] | str | Path, mic: str = "mic1") -> list[Utterance]:
    """Utterances of several corpora; a speaker name in two roots is one speaker.

    An utterance id seen again in a later root is skipped (with a warning) so keys stay unique.
    """
    if isinstance(roots, (str, Path)):
        roots = [roots]
    if not roots:
        raise DataError("no corpus directory given")
    seen: dict[str, Utterance] = {}
    dupes = 0
    for root in roots:
        for utt in scan_corpus(root, mic=mic):
            if utt.key in seen:
                dupes += 1
            else:
                seen[utt.key] = utt
    if dupes:
        _warn(f"skipped {dupes} utterances found in more than one corpus directory")
    return sorted(seen.values(), key=lambda u: (u.speaker, u.utt_id))


def read_speaker_info(root: str | Path) -> dict[str, dict]:
    """Parse VCTK's speaker-info.txt -> {"p225": {"age", "gender", "accent", "region", "comment"}}.

    IDs with or without the "p" prefix map to "pNNN"; headers, blank and odd lines are skipped.
    A missing file gives {}.
    """
    path = Path(root) / "speaker-info.txt"
    if not path.is_file():
        return {}
    info: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        comment = None
        match = re.search(r"\((.*)\)", line)
        if match:
            comment = match.group(1).strip()
            line = line[: match.start()] + line[match.end() :]
        fields = line.split()
        if len(fields) < 3 or fields[0].upper() == "ID":
            continue
        speaker = fields[0]
        if speaker.isdigit():
            speaker = f"p{speaker}"
        if not re.fullmatch(r"[A-Za-z]*\d+", speaker):
            continue
        age = int(fields[1]) if fields[1].isdigit() else None
        info[speaker] = {
            "age": age,
            "gender": fields[2].upper(),
            "accent": fields[3] if len(fields) > 3 else None,
            "region": " ".join(fields[4:]) or None,
            "comment": comment,
        }
    return info


def speaker_table(utts: Iterable[Utterance]) -> list[str]:
    """Sorted unique speaker names; a speaker's index is its position."""
    return sorted({u.speaker for u in utts})


def _unit_hash(key: str) -> float:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_utterances(
    utts: Sequence[UtteranceLike],
    val_fraction: float = 0.05,
    holdout: Iterable[str] | None = (),
    min_val_per_speaker: int = 1,
) -> tuple[list[UtteranceLike], list[UtteranceLike]]:
    """Deterministic (train, val) split by a sha256 of "speaker/utt_id".

    Takes anything with `.speaker` and `.utt_id` (Utterance, CacheEntry) and returns those same
    objects, each list sorted by (speaker, utt_id). Utterances whose utt_id matches a `holdout` id
    or glob always go to val. With val_fraction > 0, every speaker with at least two utterances
    gets `min_val_per_speaker` val utterances but keeps at least one for training; a speaker's
    single utterance stays in train unless held out.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    patterns = list(holdout or ())
    by_speaker: dict[str, list[UtteranceLike]] = defaultdict(list)
    for utt in utts:
        by_speaker[utt.speaker].append(utt)
    train: list[UtteranceLike] = []
    val: list[UtteranceLike] = []
    for speaker in sorted(by_speaker):
        hashes = {u.utt_id: _unit_hash(f"{u.speaker}/{u.utt_id}") for u in by_speaker[speaker]}
        ranked = sorted(by_speaker[speaker], key=lambda u: (hashes[u.utt_id], u.utt_id))
        held = [u for u in ranked if any(fnmatch.fnmatchcase(u.utt_id, p) for p in patterns)]
        held_ids = {u.utt_id for u in held}
        rest = [u for u in ranked if u.utt_id not in held_ids]
        n_val = sum(hashes[u.utt_id] < val_fraction for u in rest)
        if val_fraction > 0:
            n_val = max(n_val, min_val_per_speaker - len(held))
        n_val = max(0, min(n_val, len(rest) - 1))
        val += held + rest[:n_val]
        train += rest[n_val:]
    order = lambda u: (u.speaker, u.utt_id)  # noqa: E731
    return sorted(train, key=order), sorted(val, key=order)
