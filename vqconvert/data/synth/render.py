"""Rendering text with a synthesizer voice: raw engine WAVs, arrays, and corpus files."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vqconvert.config import SAMPLE_RATE
from vqconvert.data.synth.voices import Voice, run_command
from vqconvert.errors import DataError


def check_result(res: subprocess.CompletedProcess, what: str) -> None:
    """DataError with the tail of its output when a synthesizer command failed."""
    if res.returncode != 0:
        tail = " ".join((res.stderr or res.stdout or "").split())[-300:]
        raise DataError(f"{what} failed (exit {res.returncode}): {tail or 'no message'}")


def scheme_string(text: str) -> str:
    """`text` as a quoted Scheme string (festival scripts)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_raw(voice: Voice, texts: Sequence[str], paths: Sequence[Path]) -> None:
    """Synthesize texts[i] to paths[i] as the engine's own WAV (its own sample rate)."""
    if voice.engine == "espeak-ng":
        for text, path in zip(texts, paths, strict=True):
            res = run_command(["espeak-ng", "-v", voice.spec, "-w", str(path)], input=text)
            check_result(res, f"espeak-ng -v {voice.spec}")
    elif voice.engine == "flite":
        for text, path in zip(texts, paths, strict=True):
            res = run_command(["flite", "-voice", voice.spec, "-t", text, "-o", str(path)])
            check_result(res, f"flite -voice {voice.spec}")
    elif voice.engine == "festival":
        # One festival process per batch: start-up (~0.4 s) dominates single sentences. Output is
        # byte-identical to `text2wave -eval '(voice_X)'`.
        lines = [f"(voice_{voice.spec})"]
        for text, path in zip(texts, paths, strict=True):
            lines.append(
                f"(utt.save.wave (utt.synth (Utterance Text {scheme_string(text)})) {scheme_string(str(path))} 'riff)"
            )
        with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as fh:
            fh.write("\n".join(lines) + "\n")
            script = fh.name
        try:
            res = run_command(["festival", "-b", script], timeout=60 + 20 * len(texts))
        finally:
            os.unlink(script)
        check_result(res, f"festival voice {voice.spec}")
        if "SIOD ERROR" in (res.stderr or "") + (res.stdout or ""):
            raise DataError(f"festival voice {voice.spec} failed: {' '.join(res.stderr.split())[-300:]}")
    else:
        raise DataError(f"unknown synthesizer engine {voice.engine!r}")
    for path in paths:
        if not path.is_file() or path.stat().st_size <= 44:
            raise DataError(f"{voice.engine} voice {voice.spec} wrote no audio for {path.name}")


def render_to_arrays(voice: Voice, texts: Sequence[str], sample_rate: int = SAMPLE_RATE) -> list:
    """Synthesize texts -> float32 arrays at `sample_rate` (used by tests and `measure_voices`)."""
    from vqconvert.audio import load_audio

    with tempfile.TemporaryDirectory(prefix="vqsynth-") as tmp:
        paths = [Path(tmp) / f"{i:04d}.wav" for i in range(len(texts))]
        render_raw(voice, texts, paths)
        return [load_audio(p, sample_rate) for p in paths]


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically (temp file + rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def render_chunk(voice: Voice, items: Sequence[tuple[Path, str]], sample_rate: int) -> float:
    """Render (wav path, text) items; returns seconds of audio written."""
    from vqconvert.audio import load_audio, save_wav

    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="vqsynth-") as tmp:
        raw = [Path(tmp) / f"{i:04d}.wav" for i in range(len(items))]
        render_raw(voice, [t for _, t in items], raw)
        for (wav, text), src in zip(items, raw, strict=True):
            audio = load_audio(src, sample_rate)
            write_text_atomic(wav.with_suffix(".txt"), text + "\n")
            # only pending items (missing, incomplete, stale, or --overwrite) get here
            save_wav(wav, audio, sample_rate, overwrite=True)
            seconds += audio.shape[0] / sample_rate
    return seconds


def is_complete(wav: Path, text: str) -> bool:
    """Whether an utterance's WAV and transcript are both there and the transcript is `text`."""
    txt = wav.with_suffix(".txt")
    if not (wav.is_file() and txt.is_file()):
        return False
    try:
        return txt.read_text(encoding="utf-8").strip() == text
    except OSError:
        return False


def wav_seconds(path: Path) -> float:
    """Duration of a WAV file in seconds."""
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate
