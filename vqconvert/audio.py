"""Audio I/O: the only module that loads, resamples, saves or mu-law codes audio.

Arrays are float32 mono `(T,)` in [-1, 1] unless said otherwise.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import soundfile as sf
import soxr

from vqconvert.config import SAMPLE_RATE
from vqconvert.errors import AudioError, OutputError
from vqconvert.fileio import atomic_output, write_output, write_stdout

if TYPE_CHECKING:
    import torch

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")

Source = str | Path | BinaryIO


def _name(source: Source) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, (str, Path)) else "<stream>"


def _sf_message(err: Exception) -> str:
    text = getattr(err, "error_string", None) or str(err)
    text = " ".join(str(text).split()).rstrip(".").removeprefix("Error : ")
    if "not recognised" in text.lower() or "not recognized" in text.lower():
        return "not an audio file (format not recognised)"
    if "malformed" in text.lower() or "lost sync" in text.lower() or "unimplemented" in text.lower():
        return f"corrupt or truncated audio ({text})"
    return f"cannot decode audio ({text})"


def _open_binary(path: Path) -> BinaryIO:
    return open(path, "rb")


def _open_path(path: Path) -> BinaryIO:
    """Open a file for reading, turning every OS failure into a one-line AudioError."""
    name = str(path)
    if not path.exists():
        raise AudioError(f"{name}: no such file")
    if path.is_dir():
        raise AudioError(f"{name}: is a directory, not an audio file")
    try:
        fh = _open_binary(path)
    except PermissionError:
        raise AudioError(f"{name}: permission denied") from None
    except OSError as err:
        raise AudioError(f"{name}: cannot open ({err.strerror or err})") from None
    return fh


def _seekable(stream: BinaryIO) -> BinaryIO:
    try:
        if stream.seekable():
            return stream
    except (AttributeError, OSError, ValueError):
        pass
    return io.BytesIO(stream.read())


def _stream_size(fh: BinaryIO) -> int:
    pos = fh.tell()
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(pos)
    return size


def _check_wav_truncation(fh: BinaryIO, name: str) -> None:
    """Raise when a RIFF/WAVE header promises more audio bytes than the file holds.

    libsndfile silently shortens such files; streaming writers (size 0 or 0xFFFFFFFF) are allowed.
    """
    start = fh.tell()
    try:
        size = _stream_size(fh)
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            pos += 8
            if chunk_id == b"data":
                available = size - pos
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size - available > 8:
                    raise AudioError(
                        f"{name}: truncated WAV file (header promises {chunk_size} bytes of audio, "
                        f"only {available} present)"
                    )
                return
            pos += chunk_size + (chunk_size & 1)
    finally:
        fh.seek(start)


def _read(fh: BinaryIO, name: str) -> tuple[np.ndarray, int]:
    """Decode a seekable binary stream -> float32 `(T, C)` and its sample rate."""
    if _stream_size(fh) == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)")
    _check_wav_truncation(fh, name)
    try:
        with sf.SoundFile(fh) as f:
            frames, rate, fmt = f.frames, f.samplerate, f.format
            data = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError) as err:
        raise AudioError(f"{name}: {_sf_message(err)}") from None
    # MP3 frame counts are estimates; a short read there is normal.
    if fmt != "MP3" and 0 < frames and data.shape[0] < frames:
        raise AudioError(f"{name}: corrupt or truncated audio (read {data.shape[0]} of {frames} frames)")
    if data.shape[0] == 0:
        raise AudioError(f"{name}: contains no audio (0 samples)")
    return data, rate


def _decode(source: Source) -> tuple[np.ndarray, int, str]:
    if isinstance(source, str) and source == "-":
        source = sys.stdin.buffer
    name = _name(source)
    if isinstance(source, (str, Path)):
        with _open_path(Path(source)) as fh:
            data, rate = _read(fh, name)
    else:
        data, rate = _read(_seekable(source), name)
    return data, rate, name


def load_audio(source: Source, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any libsndfile format -> float32 mono `(T,)` at `sample_rate`, peak-safe in [-1, 1].

    Channels are averaged, other rates are resampled with soxr HQ, and float audio louder than
    full scale is scaled down to peak 1. "-" reads stdin. Every failure is an AudioError naming
    the source.
    """
    data, rate, name = _decode(source)
    audio = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name}: contains NaN or infinite samples")
    if rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
        if audio.size == 0:
            raise AudioError(f"{name}: too short to resample from {rate} Hz to {sample_rate} Hz")
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        audio = audio / peak
    return np.ascontiguousarray(audio, dtype=np.float32)


def audio_info(path: str | Path) -> dict:
    """Header facts: sample_rate, channels, frames, duration (s), format, subtype."""
    name = str(path)
    with _open_path(Path(path)) as fh:
        if _stream_size(fh) == 0:
            raise AudioError(f"{name}: file is empty (0 bytes)")
        _check_wav_truncation(fh, name)
        try:
            with sf.SoundFile(fh) as f:
                info = {
                    "sample_rate": f.samplerate,
                    "channels": f.channels,
                    "frames": f.frames,
                    "duration": f.frames / f.samplerate if f.samplerate else 0.0,
                    "format": f.format,
                    "subtype": f.subtype,
                }
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError) as err:
            raise AudioError(f"{name}: {_sf_message(err)}") from None
    if info["frames"] == 0:
        raise AudioError(f"{name}: contains no audio (0 samples)")
    return info


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """soxr HQ resampling of `(T,)` or `(T, C)` float audio; returns float32 with T * sr_out / sr_in rows."""
    audio = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return audio
    return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def _prepare(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be (T,) or (T, C), got shape {audio.shape}")
    return np.clip(np.nan_to_num(audio, nan=0.0), -1.0, 1.0)


def wav_bytes(audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """A complete WAV file in memory for `(T,)` or `(T, C)` audio, clipped to [-1, 1]."""
    buf = io.BytesIO()
    sf.write(buf, _prepare(audio), sample_rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def opus_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, level: float = 0.9) -> bytes:
    """A complete Ogg Opus file in memory for mono `(T,)` audio. `level` is libsndfile's compression
    level, 0 (about 260 kbit/s) to 1 (the smallest): 0.9 gives about 32 kbit/s on speech."""
    buf = io.BytesIO()
    sf.write(buf, _prepare(audio), sample_rate, format="OGG", subtype="OPUS", compression_level=level)
    return buf.getvalue()


def save_wav(
    path: str | Path, audio: np.ndarray, sample_rate: int, overwrite: bool = False, subtype: str = "PCM_16"
) -> None:
    """Atomically write a WAV (see vqconvert.fileio); "-" writes to stdout.

    Raises OutputError when `path` exists and `overwrite` is False, or when it cannot be written.
    """
    data = wav_bytes(audio, sample_rate, subtype)
    if str(path) == "-":
        write_stdout(data, "audio")
    else:
        write_output(path, data, overwrite=overwrite)


class WavWriter:
    """Appends mono float audio to an open WAV; made by `open_wav_writer`, not directly."""

    def __init__(self, sink, sample_rate: int, resampler=None, frames: int | None = None) -> None:
        self._sink = sink  # a soundfile.SoundFile, or a binary stream for raw PCM_16 after a header
        self._resampler = resampler
        self.sample_rate = sample_rate
        self.frames_written = 0
        self._expected = frames

    def _emit(self, audio: np.ndarray) -> None:
        if audio.size == 0:
            return
        audio = np.clip(np.nan_to_num(audio.astype(np.float32, copy=False), nan=0.0), -1.0, 1.0)
        if self._expected is not None:  # a stdout stream promised this many frames in its header
            audio = audio[: max(0, self._expected - self.frames_written)]
        if isinstance(self._sink, sf.SoundFile):
            self._sink.write(audio)
        else:
            self._sink.write(np.round(audio * 32767.0).astype("<i2").tobytes())
        self.frames_written += audio.shape[0]

    def write(self, audio: np.ndarray | torch.Tensor) -> None:
        """Append `(T,)` float samples in [-1, 1] (clipped; NaN becomes 0)."""
        if hasattr(audio, "detach"):
            audio = audio.detach().float().cpu().numpy()
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        self._emit(audio)

    def _finish(self) -> None:
        if self._resampler is not None:
            self._emit(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        if self._expected is not None and self.frames_written < self._expected:
            self._emit(np.zeros(self._expected - self.frames_written, dtype=np.float32))


class _StdoutSink:
    """stdout for raw bytes; a closed pipe or full disk becomes an OutputError."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        sys.stdout.flush()

    def write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
        except OSError as err:  # BrokenPipeError included
            raise OutputError(f"cannot write audio to stdout ({err})") from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as err:
            raise OutputError(f"cannot write audio to stdout ({err})") from None


def _stream_wav_header(sample_rate: int, frames: int | None) -> bytes:
    """PCM_16 mono WAV header; unknown length gets the streaming sizes 0xFFFFFFFF."""
    data = 0xFFFFFFFF if frames is None else 2 * frames
    riff = 0xFFFFFFFF if frames is None else 36 + data
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, 2 * sample_rate, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data)
    )


@contextlib.contextmanager
def open_wav_writer(
    path: str | Path,
    sample_rate: int,
    overwrite: bool = False,
    *,
    source_rate: int | None = None,
    frames: int | None = None,
) -> Iterator[WavWriter]:
    """Stream a PCM_16 mono WAV to `path` piece by piece, in bounded memory.

    Atomic like `save_wav`: the audio goes to a temp file beside `path` that is renamed onto it only
    when the `with` block ends without an exception, and removed otherwise. "-" streams to stdout
    (header first: exact sizes when `frames`, the final frame count, is given, else the streaming
    sizes 0xFFFFFFFF that libsndfile, sox and ffmpeg accept). `source_rate` is the rate of the audio
    passed to `write` when it differs from `sample_rate` (resampled on the fly with soxr HQ).
    OutputError when `path` exists and `overwrite` is False, or it cannot be written.
    """
    resampler = None
    if source_rate is not None and source_rate != sample_rate:
        resampler = soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32", quality="HQ")
    if str(path) == "-":
        writer = WavWriter(_StdoutSink(sys.stdout.buffer), sample_rate, resampler, frames)
        writer._sink.write(_stream_wav_header(sample_rate, frames))
        yield writer
        writer._finish()
        writer._sink.flush()
        return
    path = Path(path)
    with atomic_output(path, overwrite=overwrite, hint=" (use --force)") as tmp:
        try:
            sink = sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1, format="WAV", subtype="PCM_16")
        except (OSError, sf.SoundFileError, RuntimeError) as err:
            raise OutputError(f"{path}: cannot write ({getattr(err, 'strerror', None) or err})") from None
        try:
            writer = WavWriter(sink, sample_rate, resampler)
            yield writer
            writer._finish()
        finally:
            sink.close()


def pitch_shift(audio: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`(T,)` -> `(T,)` with pitch and spectral envelope moved by `semitones` (phase-vocoder stretch, then
    soxr resampling back to T samples), so timing stays aligned with the input. ~2 ms for 0.5 s."""
    import librosa

    x = np.asarray(audio, np.float32)
    if semitones == 0.0 or x.size < 2048:
        return x.copy()
    y = librosa.effects.pitch_shift(x, sr=sample_rate, n_steps=float(semitones), n_fft=1024)
    return np.clip(y[: x.size], -1.0, 1.0).astype(np.float32, copy=False)


def trim_silence(
    audio: np.ndarray,
    top_db: float = 40.0,
    frame: int = 1024,
    hop: int = 256,
    pad: float = 0.05,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Cut leading/trailing audio quieter than `top_db` below the peak frame, keeping `pad` seconds.

    Same frame rule as librosa.effects.trim (centred RMS frames). `(T,)` -> `(T',)`, never empty
    for non-empty input (all-silent audio comes back unchanged).
    """
    audio = np.asarray(audio, dtype=np.float32)
    n = audio.shape[0]
    if n == 0:
        return audio
    half = frame // 2
    power = np.concatenate([np.zeros(half), audio.astype(np.float64) ** 2, np.zeros(half)])
    cum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(1 + n // hop) * hop
    ends = np.minimum(starts + frame, power.shape[0])
    mean_power = (cum[ends] - cum[starts]) / frame
    ref = mean_power.max()
    if ref <= 0:
        return audio
    loud = np.flatnonzero(10.0 * np.log10(np.maximum(mean_power, 1e-20) / ref) > -top_db)
    if loud.size == 0:
        return audio
    margin = int(round(pad * sample_rate))
    start = max(0, int(loud[0]) * hop - margin)
    end = min(n, (int(loud[-1]) + 1) * hop + margin)
    return audio[start:end] if end > start else audio
