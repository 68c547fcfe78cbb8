"""A compact travelling copy of training corpora, fitted to a byte budget: each clip trimmed as the
training cache trims it, as 16 kHz Ogg Opus in the generic `<root>/<speaker>/<utt_id>.ogg` layout with
its transcript beside (`.txt`).

For training where the corpora cannot be read, such as a lent GPU machine that only receives a working
tree of at most 64 MiB (issue 14, item 7). Speaker names and utterance ids are kept, so the hash-based
train/validation split (`corpus.split_utterances`) and `--holdout` ids mean the same clips as on the full
corpora. Roots named in `whole` go in completely, first (real speech is the scarce part). The rest of the
budget takes clips round-robin over the other roots' speakers, each speaker's clips in id order, so every
speaker gets a share and the first clips (the probe clips, `*_0001`) come first.

    python -m vqconvert.data.pack corpus/synth ../shared/vctk-mini --whole ../shared/vctk-mini \\
        --budget 28MB --out .gpu/data
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.audio import load_audio, opus_bytes, trim_silence
from vqconvert.config import SAMPLE_RATE
from vqconvert.data.corpus import Utterance, scan_corpus
from vqconvert.errors import AudioError, VQConvertError

MANIFEST = "pack.json"
TRIM_DB = 40.0  # the training cache's default (data.cache.load_or_build_cache)


@dataclass(frozen=True)
class PackReport:
    clips: int
    seconds: float
    bytes: int
    speakers: int
    left_out: int  # clips of the round-robin roots that did not fit
    unreadable: int


def _root_names(roots: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for root in roots:
        name = root.resolve().name or "root"
        names.append(name if name not in names else f"{name}-{len(names)}")
    return names


def _round_robin(utts: Sequence[Utterance]) -> list[Utterance]:
    """Clip 0 of every speaker, then clip 1 of every speaker, ... (speakers and clips sorted)."""
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for u in sorted(utts, key=lambda u: (u.speaker, u.utt_id)):
        by_speaker[u.speaker].append(u)
    order: list[Utterance] = []
    depth = max((len(v) for v in by_speaker.values()), default=0)
    for i in range(depth):
        order += [clips[i] for _, clips in sorted(by_speaker.items()) if i < len(clips)]
    return order


def _encode(utt: Utterance, level: float) -> tuple[bytes, float]:
    audio = trim_silence(load_audio(utt.path, SAMPLE_RATE), top_db=TRIM_DB, sample_rate=SAMPLE_RATE)
    return opus_bytes(audio, SAMPLE_RATE, level), audio.shape[0] / SAMPLE_RATE


def pack_corpora(
    roots: Sequence[str | Path],
    out: str | Path,
    budget: int,
    whole: Sequence[str | Path] = (),
    level: float = 0.9,
    force: bool = False,
    log=print,
) -> PackReport:
    """Write the pack to `out` (built beside it, renamed into place when complete) and return its sizes."""
    roots = [Path(r) for r in roots]
    whole_set = {Path(w).resolve() for w in whole}
    missing = whole_set - {r.resolve() for r in roots}
    if missing:
        raise VQConvertError(f"--whole {sorted(map(str, missing))[0]} is not one of the corpora given")
    out = Path(out)
    if out.exists() and not force:
        raise VQConvertError(f"{out} exists: use --force to replace it")
    used, seconds, clips, left_out, unreadable = 0, 0.0, 0, 0, 0
    speakers: set[str] = set()
    per_root: dict[str, dict] = {}
    names = _root_names(roots)
    # whole roots first, then the others' clips interleaved by speaker
    queue: list[tuple[str, Utterance, bool]] = []
    rest: list[tuple[str, Utterance]] = []
    for root, name in zip(roots, names, strict=True):
        utts = scan_corpus(root)
        per_root[name] = {"source": str(root), "whole": root.resolve() in whole_set, "clips": 0, "seconds": 0.0}
        if root.resolve() in whole_set:
            queue += [(name, u, True) for u in utts]
        else:
            rest += [(name, u) for u in utts]
    by_utt = {id(u): name for name, u in rest}
    queue += [(by_utt[id(u)], u, False) for u in _round_robin([u for _, u in rest])]
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    full = False
    for name, utt, must in queue:
        if full:
            left_out += 1
            continue
        try:
            data, dur = _encode(utt, level)
        except AudioError as err:
            log(f"skipped: {err}")
            unreadable += 1
            continue
        text = (utt.text + "\n").encode("utf-8") if utt.text else b""
        size = len(data) + len(text)
        if used + size > budget:
            if must:
                shutil.rmtree(tmp, ignore_errors=True)
                raise VQConvertError(f"the --whole corpora alone need more than the budget of {budget} bytes")
            full, left_out = True, left_out + 1
            continue
        folder = tmp / name / utt.speaker
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{utt.utt_id}.ogg").write_bytes(data)
        if text:
            (folder / f"{utt.utt_id}.txt").write_bytes(text)
        used, seconds, clips = used + size, seconds + dur, clips + 1
        speakers.add(utt.speaker)
        per_root[name]["clips"] += 1
        per_root[name]["seconds"] = round(per_root[name]["seconds"] + dur, 2)
        if clips % 200 == 0:
            log(f"{clips} clips, {seconds / 3600:.2f} h, {used / 2**20:.1f} MiB")
    report = PackReport(clips, round(seconds, 2), used, len(speakers), left_out, unreadable)
    manifest = {
        "format": 1,
        "codec": "ogg-opus",
        "level": level,
        "sample_rate": SAMPLE_RATE,
        "trim_db": TRIM_DB,
        "budget": budget,
        "roots": per_root,
        **asdict(report),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return report


def parse_size(text: str) -> int:
    """'28MB' / '28MiB' / '1.5GB' / '123456' -> bytes (MB and MiB both mean 2**20 here)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if scale > 1 else t) * scale)
    except ValueError:
        raise typer.BadParameter(f"not a size: {text!r} (e.g. 28MB)") from None


app = typer.Typer(add_completion=False, context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    roots: Annotated[list[Path], typer.Argument(help="Corpus roots (VCTK or <speaker>/*.wav).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Pack directory to write.")],
    budget: Annotated[str, typer.Option(help="Most bytes the pack may take, e.g. 28MB.")],
    whole: Annotated[list[Path], typer.Option(help="A root to take completely, first (repeatable).")] = [],  # noqa: B006
    level: Annotated[float, typer.Option(min=0.0, max=1.0, help="Opus compression level (0.9: ~32 kbit/s).")] = 0.9,
    force: Annotated[bool, typer.Option(help="Replace an existing pack.")] = False,
) -> None:
    """Pack corpora into compact Ogg Opus clips that fit a byte budget."""
    try:
        r = pack_corpora(roots, out, parse_size(budget), whole, level, force, log=lambda m: print(m, file=sys.stderr))
    except VQConvertError as err:
        print(f"error: {err}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(
        f"{out}: {r.clips} clips, {r.speakers} speakers, {r.seconds / 3600:.2f} h, {r.bytes / 2**20:.1f} MiB; "
        f"{r.left_out} clips did not fit, {r.unreadable} unreadable",
        file=sys.stderr,
    )


if __name__ == "__main__":
    app()
