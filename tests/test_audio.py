"""vqconvert.audio: formats, resampling, every bad input, atomic saving, mu-law."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vqconvert import audio
from vqconvert.audio import (
    audio_info,
    load_audio,
    resample,
    save_wav,
    trim_silence,
    wav_bytes,
)
from vqconvert.errors import AudioError, OutputError
from vqconvert.model.mulaw import mu_law_decode, mu_law_encode

FORMATS = [
    ("a.wav", "PCM_16"),
    ("a.wav", "PCM_24"),
    ("a.wav", "PCM_32"),
    ("a.wav", "FLOAT"),
    ("a.wav", "DOUBLE"),
    ("a.wav", "PCM_U8"),
    ("a.flac", "PCM_16"),
    ("a.flac", "PCM_24"),
    ("a.ogg", "VORBIS"),
    ("a.aiff", "PCM_16"),
    ("a.au", "PCM_16"),
]
if "MP3" in sf.available_formats():
    FORMATS.append(("a.mp3", "MPEG_LAYER_III"))


@pytest.mark.parametrize(("name", "subtype"), FORMATS)
def test_formats_load_as_float32_mono(make_wav, name, subtype):
    x = load_audio(make_wav(name, seconds=0.25, subtype=subtype))
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.shape[0] - 4000) <= (1200 if name.endswith(".mp3") else 0)
    assert 0.3 < np.abs(x).max() <= 1.0


def test_stereo_is_averaged(make_wav):
    path = make_wav("st.wav", channels=2, subtype="FLOAT")
    data, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(load_audio(path), data.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 22050, 48000])
def test_resampled_to_16k(make_wav, sr):
    x = load_audio(make_wav(f"r{sr}.wav", seconds=0.5, sr=sr))
    assert abs(x.shape[0] - 8000) <= 1
    assert np.abs(x).max() <= 1.0
    assert resample(np.zeros(sr, np.float32), sr, 16000).shape == (16000,)


def test_other_target_rate_and_file_object(make_wav):
    path = make_wav("x.wav", seconds=0.25)
    assert load_audio(path, sample_rate=8000).shape == (2000,)
    with open(path, "rb") as fh:
        assert load_audio(fh).shape == (4000,)


def test_unseekable_stream_is_buffered(make_wav):
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b) -> int:
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    assert load_audio(Pipe(make_wav("p.wav").read_bytes())).shape == (4000,)


def test_dash_reads_stdin(make_wav, monkeypatch):
    fake = io.TextIOWrapper(io.BytesIO(make_wav("s.wav").read_bytes()))
    monkeypatch.setattr("sys.stdin", fake)
    assert load_audio("-").shape == (4000,)


def test_loud_float_file_is_peak_normalised(make_wav):
    x = load_audio(make_wav("loud.wav", subtype="FLOAT", amp=3.0))
    assert np.isclose(np.abs(x).max(), 1.0, atol=1e-4)


def test_audio_info(make_wav):
    info = audio_info(make_wav("i.flac", seconds=0.5, sr=22050, channels=2))
    assert info["sample_rate"] == 22050 and info["channels"] == 2 and info["frames"] == 11025
    assert info["format"] == "FLAC" and info["subtype"] == "PCM_16"
    assert info["duration"] == pytest.approx(0.5)


def _raises(path, match: str) -> None:
    for fn in (load_audio, audio_info):
        with pytest.raises(AudioError, match=match) as err:
            fn(path)
        msg = str(err.value)
        assert str(path) in msg and "\n" not in msg


def test_missing_and_directory(tmp_path):
    _raises(tmp_path / "nope.wav", "no such file")
    (tmp_path / "d.wav").mkdir()
    _raises(tmp_path / "d.wav", "directory")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_chmod(make_wav):
    path = make_wav("locked.wav")
    path.chmod(0)
    _raises(path, "permission denied")


def test_permission_denied(make_wav, monkeypatch):
    path = make_wav("locked.wav")

    def deny(p):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(audio, "_open_binary", deny)
    _raises(path, "permission denied")


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 10)
    _raises(path, "not an audio file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    _raises(path, "empty")


def test_zero_frame_wav(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    _raises(path, "no audio")


@pytest.mark.parametrize("name", ["t.wav", "t.flac", "t.ogg"])
@pytest.mark.parametrize("keep", [0.6, 0.02])
def test_truncated(make_wav, name, keep):
    path = make_wav(name, seconds=0.5, kind="noise", subtype="VORBIS" if name.endswith("ogg") else "PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: max(int(len(data) * keep), 20)])
    with pytest.raises(AudioError, match="truncated|not an audio file|corrupt|no audio") as err:
        load_audio(path)
    assert str(path) in str(err.value)


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    x = np.zeros(1600, np.float32)
    x[100] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as err:
        load_audio(path)
    assert str(path) in str(err.value)
    x[100] = np.inf
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="infinite"):
        load_audio(path)


def test_save_wav_roundtrip_and_clipping(tmp_path):
    path = tmp_path / "out.wav"
    x = np.linspace(-2, 2, 1600, dtype=np.float32)
    save_wav(path, x, 16000)
    y, sr = sf.read(path, dtype="float32")
    assert sr == 16000 and sf.info(path).subtype == "PCM_16"
    assert y.shape == (1600,) and y.max() <= 1.0 and y.min() >= -1.0
    np.testing.assert_allclose(y[800:810], x[800:810], atol=1e-4)
    assert os.listdir(tmp_path) == ["out.wav"]


def test_save_wav_refuses_overwrite(tmp_path):
    path = tmp_path / "out.wav"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        save_wav(path, np.zeros(160, np.float32), 16000)
    assert path.read_bytes() == b"keep me"
    save_wav(path, np.zeros(160, np.float32), 16000, overwrite=True)
    assert sf.info(path).frames == 160
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]


def test_save_wav_failure_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OutputError, match="No space left"):
        save_wav(path, np.zeros(160, np.float32), 16000)
    assert os.listdir(tmp_path) == []
    with pytest.raises(OutputError, match="does not exist"):
        save_wav(tmp_path / "no" / "dir.wav", np.zeros(160, np.float32), 16000)


def test_save_wav_stdout(capfdbinary):
    save_wav("-", np.zeros(160, np.float32), 16000)
    out = capfdbinary.readouterr().out
    assert out[:4] == b"RIFF" and out == wav_bytes(np.zeros(160, np.float32), 16000)
    y, sr = sf.read(io.BytesIO(out))
    assert sr == 16000 and y.shape == (160,)


def test_trim_silence():
    sr = 16000
    tone = 0.5 * np.sin(np.arange(sr // 2) * 0.1).astype(np.float32)
    x = np.concatenate([np.zeros(sr), tone, np.zeros(sr)]).astype(np.float32)
    y = trim_silence(x, pad=0.05, sample_rate=sr)
    assert len(tone) <= y.shape[0] <= len(tone) + 2 * (0.05 * sr + 1024)
    assert trim_silence(np.zeros(100, np.float32)).shape == (100,)
    assert trim_silence(np.full(10, 0.1, np.float32)).shape[0] > 0


def test_mu_law_exact_integer_roundtrip():
    idx = torch.arange(256)
    assert torch.equal(mu_law_encode(mu_law_decode(idx)), idx)
    levels = mu_law_decode(idx)
    assert levels.dtype == torch.float32 and levels[0] == -1.0 and levels[-1] == 1.0
    assert torch.all(levels[1:] > levels[:-1])


def test_mu_law_roundtrip_error_within_step():
    x = torch.linspace(-1, 1, 20001)
    idx = mu_law_encode(x)
    assert idx.dtype == torch.long and idx.min() == 0 and idx.max() == 255 and idx.shape == x.shape
    levels = mu_law_decode(torch.arange(256))
    gaps = levels[1:] - levels[:-1]
    step = torch.maximum(torch.cat([gaps[:1], gaps]), torch.cat([gaps, gaps[-1:]]))  # around each level
    err = (mu_law_decode(idx) - x).abs()
    assert torch.all(err <= step[idx] * 0.51)  # half a step, plus curvature
    companded = torch.sign(x) * torch.log1p(255 * x.abs()) / np.log1p(255)
    assert torch.all((companded - (idx * 2 / 255 - 1)).abs() <= 1 / 255 + 1e-6)  # half a step in mu domain
    assert err.max() < 0.022
    assert mu_law_encode(torch.tensor([5.0, -5.0])).tolist() == [255, 0]


def test_load_path_types(make_wav):
    path = make_wav("s.wav")
    assert np.array_equal(load_audio(str(path)), load_audio(Path(path)))


def test_pitch_shift_moves_the_pitch_and_keeps_length_and_timing():
    from vqconvert.audio import pitch_shift

    t = np.arange(8000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    x[4000:] = 0.0  # a tone then silence: the onset of silence must stay where it was
    f = np.fft.rfftfreq(4000, 1 / 16000)
    for semis, want in ((12.0, 400.0), (-12.0, 100.0), (4.0, 200 * 2 ** (4 / 12))):
        y = pitch_shift(x, semis)
        assert y.shape == x.shape and y.dtype == np.float32 and np.abs(y).max() <= 1.0
        peak = f[np.argmax(np.abs(np.fft.rfft(y[:4000])))]
        assert abs(peak - want) < 10, (semis, peak)
        assert np.abs(y[5100:]).max() < 0.05 * np.abs(y[:3000]).max()  # smeared by at most one 64 ms window
    assert np.array_equal(pitch_shift(x, 0.0), x)
