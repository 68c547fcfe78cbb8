"""Debian's pocketsphinx-testdata as a list of clips with reference transcripts (bench/real_speech.py):
Sphinx `*transcription` / `*fileids` parsing, the TIDIGITS folder left out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA = Path("/usr/share/pocketsphinx/test/data")
EXCLUDED = ("tidigits",)  # digit strings of TIDIGITS: not free speech, and no .wav with a transcript
_TAGS = re.compile(r"</?s>|<sil>|\[[^\]]*\]|\+\+[^+]*\+\+")  # sentence marks, fillers, noise tokens
_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<id>[^()\s]+)\)\s*$")


@dataclass(frozen=True)
class Clip:
    name: str  # "<folder>/<id>"
    path: Path
    text: str  # normalised reference transcript


def parse_transcription(path: Path) -> dict[str, str]:
    """Sphinx transcription file -> {utterance id: normalised text}.

    Each line is `<s> words </s> (id)` (cards: `(001)`, librivox: `(sense_and_..._0870)`); the sentence
    marks `<s>`/`</s>`, `<sil>` and filler tokens (`[NOISE]`, `++UH++`) are dropped, the rest normalised
    by `vqconvert.evaluation.judges.normalize_text` (the WER judge's rule). Blank lines are skipped; a
    line without a trailing `(id)` raises ValueError naming the file and line.
    """
    from vqconvert.evaluation.judges import normalize_text

    out: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line.strip())
        if m is None:
            raise ValueError(f"{path}:{number}: no '(utterance id)' at the end of the line")
        out[m.group("id")] = normalize_text(_TAGS.sub(" ", m.group("text")))
    return out


def parse_fileids(path: Path) -> list[str]:
    """Sphinx fileids file -> ids in order (one per line, relative paths without extension)."""
    return [x.strip() for x in path.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]


def list_clips(data: Path) -> list[Clip]:
    """The .wav clips with a transcript under `data`: for each subfolder (sorted; EXCLUDED skipped) with
    one `*fileids` and one `*transcription` file, each listed id whose `<id>.wav` exists and whose
    transcript is not empty. .raw/.mfc files and ids without a transcript are left out."""
    clips = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and p.name not in EXCLUDED):
        fileids = sorted(folder.glob("*fileids"))
        trans = sorted(folder.glob("*transcription"))
        if len(fileids) != 1 or len(trans) != 1:
            continue
        texts = parse_transcription(trans[0])
        for fid in parse_fileids(fileids[0]):
            wav, key = folder / f"{fid}.wav", Path(fid).name
            if wav.is_file() and texts.get(key):
                clips.append(Clip(f"{folder.name}/{fid}", wav, texts[key]))
    return clips
