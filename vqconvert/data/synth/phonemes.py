"""Phoneme segments with times, from the synthesizers that rendered the corpus.

Every engine is deterministic, so rendering an utterance's transcript again with its voice gives the same
audio as the corpus file and, with it, where each phoneme starts and ends:

* flite: `flite -voice V -psdur -t TEXT none` prints `phone:end_time` for each segment.
* festival: the `Segment` relation of the synthesized utterance, each item's `end` feature (one festival
  process for a batch of sentences, as the corpus build does).
* espeak-ng: the command line has no timings for its own voices (`--pho` is only for mbrola voices, and
  `-x`/`-X` print phonemes without times), so the library `libespeak-ng.so.1` is driven through ctypes
  with phoneme events (`espeakINITIALIZE_PHONEME_EVENTS`), one fresh process per utterance
  (`espeak_events.py`): each event carries the sample at which its phoneme starts. That audio is
  sample-identical to the start of what `espeak-ng -w` writes (the command line adds a final pause), so
  the times hold for the corpus files.

flite and festival label segments with the same CMU phone set (`pau` for silence); espeak-ng with its own
mnemonics (`_` and `_:` for pauses). `SILENCE` lists the silence labels of both.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vqconvert.data.synth.render import check_result, scheme_string
from vqconvert.data.synth.voices import Voice, run_command
from vqconvert.errors import DataError

SILENCE = frozenset({"pau", "h#", "sil", "_", "_:", "_!", "_^", "||", "|"})
PHONE_SETS = {"espeak-ng": "espeak", "flite": "cmu", "festival": "cmu"}


@dataclass(frozen=True)
class Segment:
    phone: str
    start: float  # seconds from the start of the utterance's audio
    end: float

    def to_list(self) -> list:
        return [self.phone, round(self.start, 5), round(self.end, 5)]


def phone_set(voice: Voice) -> str:
    """The label set of a voice's segments: "cmu" (flite, festival) or "espeak"."""
    return PHONE_SETS[voice.engine]


def _from_ends(pairs: Sequence[tuple[str, float]]) -> list[Segment]:
    out, start = [], 0.0
    for phone, end in pairs:
        out.append(Segment(phone, start, max(end, start)))
        start = max(end, start)
    return out


# -- flite ----------------------------------------------------------------------------------------------


def _flite(voice: Voice, text: str) -> list[Segment]:
    res = run_command(["flite", "-voice", voice.spec, "-psdur", "-t", text, "none"])
    check_result(res, f"flite -voice {voice.spec} -psdur")
    pairs = [(m.group(1), float(m.group(2))) for m in re.finditer(r"(\S+):([0-9.]+)", res.stdout)]
    if not pairs:
        raise DataError(f"flite -voice {voice.spec} printed no segments for {text!r}")
    return _from_ends(pairs)


# -- festival -------------------------------------------------------------------------------------------

_FESTIVAL_ITEM = (
    '(begin (set! u (utt.synth (Utterance Text {text}))) (format t "@@utt\\n") '
    '(mapcar (lambda (s) (format t "%s %f\\n" (item.name s) (item.feat s "end"))) '
    "(utt.relation.items u 'Segment)))"
)


def _festival(voice: Voice, texts: Sequence[str]) -> list[list[Segment]]:
    lines = [f"(voice_{voice.spec})"] + [_FESTIVAL_ITEM.format(text=scheme_string(t)) for t in texts]
    with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        script = fh.name
    try:
        res = run_command(["festival", "-b", script], timeout=60 + 10 * len(texts))
    finally:
        os.unlink(script)
    check_result(res, f"festival voice {voice.spec}")
    blocks = res.stdout.split("@@utt\n")[1:]
    if len(blocks) != len(texts) or "SIOD ERROR" in (res.stderr or ""):
        raise DataError(f"festival voice {voice.spec}: expected {len(texts)} segment lists, got {len(blocks)}")
    out = []
    for block in blocks:
        pairs = []
        for line in block.splitlines():
            parts = line.split()
            if len(parts) == 2:
                pairs.append((parts[0], float(parts[1])))
        out.append(_from_ends(pairs))
    return out


# -- espeak-ng (library, phoneme events) ----------------------------------------------------------------

ESPEAK_SCRIPT = Path(__file__).with_name("espeak_events.py")


def _espeak(spec: str, text: str, audio_path: Path | None = None) -> list[Segment]:
    """Segments of one utterance from `espeak_events.py` in a fresh process (see its docstring)."""
    cmd = [sys.executable, str(ESPEAK_SCRIPT), spec] + ([str(audio_path)] if audio_path is not None else [])
    res = run_command(cmd, input=text, timeout=60)
    check_result(res, f"espeak-ng phoneme events ({spec})")
    lines = res.stdout.split("\n")
    try:
        rate, samples = (int(x) for x in lines[0].split())
        events = [(ln.split()[0], int(ln.split()[1])) for ln in lines[1:] if ln.strip()]
    except (ValueError, IndexError):
        raise DataError(f"espeak-ng phoneme events ({spec}): unreadable output {res.stdout[:80]!r}") from None
    if not events:
        raise DataError(f"espeak-ng gave no phoneme events for {text!r}")
    out = []
    for i, (phone, sample) in enumerate(events):
        end = events[i + 1][1] if i + 1 < len(events) else max(samples, sample)
        out.append(Segment(phone, sample / rate, max(end, sample) / rate))
    if out[0].start > 0:  # the leading silence before the first phoneme event
        out.insert(0, Segment("_", 0.0, out[0].start))
    return out


def phoneme_segments(voice: Voice, texts: Sequence[str]) -> list[list[Segment]]:
    """Segments (phone, start, end in seconds) of each text as `voice` speaks it."""
    if voice.engine == "flite":
        return [_flite(voice, t) for t in texts]
    if voice.engine == "festival":
        return _festival(voice, texts) if texts else []
    if voice.engine == "espeak-ng":
        return [_espeak(voice.spec, t) for t in texts]
    raise DataError(f"no phoneme timings for engine {voice.engine!r}")


def frame_labels(segments: Sequence[Segment], frames: int, hop_seconds: float) -> list[str | None]:
    """The phone at the centre of each code frame (None past the last segment)."""
    out: list[str | None] = []
    j = 0
    for f in range(frames):
        t = (f + 0.5) * hop_seconds
        while j < len(segments) and segments[j].end <= t:
            j += 1
        out.append(segments[j].phone if j < len(segments) and segments[j].start <= t else None)
    return out


def corpus_voice(corpus: Path, speaker: str) -> Voice:
    """The voice that rendered `corpus/<speaker>`, from the corpus manifest."""
    import json

    from vqconvert.data.synth.build import MANIFEST

    try:
        manifest = json.loads((Path(corpus) / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{corpus}: no readable synthetic-corpus manifest {MANIFEST} ({err})") from None
    for row in manifest.get("voices", []):
        if row.get("name") == speaker:
            return Voice(row["name"], row["engine"], row["spec"])
    raise DataError(f"{corpus}: the manifest lists no voice {speaker!r}")
