"""Codes files, chunked encoding, streamed/batched decoding and the streaming WAV writer."""

from __future__ import annotations

import io
import json
import struct
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from vqconvert.audio import load_audio, open_wav_writer
from vqconvert.codes import FORMAT_VERSION, MAGIC, CodesFile, bitrate, is_codes_file
from vqconvert.config import preset
from vqconvert.errors import CodesError, OutputError


def _codes(n: int = 50, k: int = 512, **kw) -> CodesFile:
    rng = np.random.default_rng(n)
    return CodesFile(indices=rng.integers(0, k, n), codebook_size=k, fingerprint="0123456789abcdef", **kw)


def _raw(header: dict, indices: bytes, version: int = FORMAT_VERSION, magic: bytes = MAGIC) -> bytes:
    head = json.dumps(header).encode()
    return magic + struct.pack("<HI", version, len(head)) + head + indices


def _header(**kw) -> dict:
    h = {
        "sample_rate": 16000,
        "hop": 64,
        "codebook_size": 512,
        "frames": 3,
        "samples": 150,
        "fingerprint": "0123456789abcdef",
        "speaker": None,
        "source": "x.wav",
        "created_by": "test",
    }
    h.update(kw)
    return h


# -- format --------------------------------------------------------------------------------------------


def test_bitrate_of_the_paper_setting():
    assert bitrate(16000, 64, 512) == pytest.approx(2250.0)
    assert _codes().bitrate == pytest.approx(2250.0)


def test_round_trip_is_exact(tmp_path):
    c = _codes(333, samples=333 * 64 - 17, speaker="p225", source="p225_001.wav")
    c.extra = {"future_field": [1, 2]}
    data = c.to_bytes()
    assert data[:8] == MAGIC
    back = CodesFile.from_bytes(data)
    assert back.indices.dtype == np.uint16 and np.array_equal(back.indices, c.indices)
    assert back.header() == c.header()
    assert back.extra == {"future_field": [1, 2]}
    assert back.to_bytes() == data  # byte-exact
    assert torch.equal(back.tensor(), torch.from_numpy(c.indices.astype(np.int64)))
    path = tmp_path / "a.vqc"
    c.save(path)
    assert is_codes_file(path) and path.read_bytes() == data
    assert np.array_equal(CodesFile.load(path).indices, c.indices)
    assert len(data) == 14 + len(json.dumps(c.header(), sort_keys=True, ensure_ascii=False).encode()) + 2 * 333


def test_all_index_values_survive():
    c = CodesFile(indices=np.arange(65536), codebook_size=65536, fingerprint="f")
    assert np.array_equal(CodesFile.from_bytes(c.to_bytes()).indices, np.arange(65536))


def test_save_refuses_to_overwrite_and_is_atomic(tmp_path):
    path = tmp_path / "a.vqc"
    _codes(5).save(path)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        _codes(6).save(path)
    assert path.read_bytes() == before
    _codes(6).save(path, overwrite=True)
    assert CodesFile.load(path).frames == 6
    with pytest.raises(OutputError, match="does not exist"):
        _codes(5).save(tmp_path / "nodir" / "a.vqc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.vqc"]  # no temp files left


def test_stdout_and_stdin(monkeypatch):
    c = _codes(7)
    out = types.SimpleNamespace(buffer=io.BytesIO(), flush=lambda: None)
    monkeypatch.setattr(sys, "stdout", out)
    c.save("-")
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(out.buffer.getvalue())))
    assert np.array_equal(CodesFile.load("-").indices, c.indices)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"VQCO", "truncated"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wrong magic"),
        (MAGIC + b"\x01\x00", "truncated"),
        (_raw(_header(), b"\0\0" * 3, version=7), "version 7 is not supported"),
        (_raw(_header(), b"\0\0" * 3)[:30], "truncated codes file \\(header"),
        (_raw(_header(), b"\0\0" * 2), "holds 2 of 3 frames"),
        (_raw(_header(), b"\0\0" * 4), "data after"),
        (MAGIC + struct.pack("<HI", 1, 5) + b"{nope", "broken JSON"),
        (MAGIC + struct.pack("<HI", 1, 2) + b"[]", "not a JSON object"),
        (MAGIC + struct.pack("<HI", 1, 0xFFFFFFF0), "implausible"),
        (_raw(_header(), struct.pack("<3H", 1, 512, 2)), "index 512 at frame 1 is out of range"),
        (_raw(_header(codebook_size=0), b"\0\0" * 3), "codebook_size"),
        (_raw(_header(frames=-1), b""), "frames"),
        (_raw(_header(frames="3"), b"\0\0" * 3), "frames"),
        (_raw(_header(fingerprint=None), b"\0\0" * 3), "fingerprint"),
        (_raw(_header(speaker=5), b"\0\0" * 3), "speaker"),
    ],
)
def test_bad_codes_are_one_line_errors(tmp_path, data, message):
    path = tmp_path / "bad.vqc"
    path.write_bytes(data)
    with pytest.raises(CodesError, match=message) as err:
        CodesFile.load(path)
    text = str(err.value)
    assert text.startswith(str(path) + ":") and "\n" not in text


def test_missing_and_directory(tmp_path):
    with pytest.raises(CodesError, match="no such file"):
        CodesFile.load(tmp_path / "nope.vqc")
    with pytest.raises(CodesError, match="is a directory"):
        CodesFile.load(tmp_path)


def test_constructor_checks_range():
    with pytest.raises(CodesError, match="out of range"):
        CodesFile(indices=np.array([0, 32]), codebook_size=32, fingerprint="f")
    with pytest.raises(CodesError, match="16-bit"):
        CodesFile(indices=np.array([0]), codebook_size=70000, fingerprint="f")


def test_check_compatible(tiny_checkpoint):
    from vqconvert.checkpoint import load_model

    m = load_model(tiny_checkpoint)
    k = m.config.codebook_size
    good = CodesFile(indices=np.zeros(4), codebook_size=k, fingerprint=m.fingerprint)
    good.check_compatible(m)
    with pytest.raises(CodesError, match="another model"):
        CodesFile(indices=np.zeros(4), codebook_size=k, fingerprint="ffffffffffffffff").check_compatible(m)
    with pytest.raises(CodesError, match=f"this model has {k}"):
        CodesFile(indices=np.zeros(4), codebook_size=512, fingerprint=m.fingerprint).check_compatible(m)
    with pytest.raises(CodesError, match="hop"):
        CodesFile(indices=np.zeros(4), codebook_size=k, fingerprint=m.fingerprint, hop=80).check_compatible(m)


# -- encoding ------------------------------------------------------------------------------------------


def test_encoder_context_from_the_architecture():
    from vqconvert.model import VQVAE
    from vqconvert.model.encoding import encoder_context

    # frame j reads samples [64 (j - R) - 63, 64 (j + R) + 126]: R + 1 frames either side
    for name in ("tiny", "small"):
        cfg = preset(name)
        assert encoder_context(VQVAE(cfg)) == (cfg.enc_res_blocks + 1, cfg.enc_res_blocks + 1)


def test_chunked_encoding_equals_whole_file(tiny_checkpoint):
    from vqconvert.checkpoint import load_model
    from vqconvert.inference import encode_audio

    model = load_model(tiny_checkpoint).model
    sr = 16000
    t = np.arange(3 * sr + 37) / sr  # 3 s, not a multiple of 64
    rng = np.random.default_rng(0)
    audio = (0.4 * np.sin(2 * np.pi * 180 * t * (1 + 0.3 * t)) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
    whole = encode_audio(model, audio, chunk_frames=10**6)
    assert whole.shape == (-(-audio.size // 64),) and whole.dtype == torch.long
    padded = np.concatenate([audio, np.zeros(whole.numel() * 64 - audio.size, np.float32)])
    assert torch.equal(whole, model.encode(torch.from_numpy(padded)[None])[0])
    assert len(set(whole.tolist())) > 1  # a meaningful comparison needs varied codes
    for chunk in (1, 7, 64, 300):
        assert torch.equal(encode_audio(model, audio, chunk_frames=chunk), whole), chunk


def test_short_clips_are_padded(tiny_checkpoint):
    from vqconvert.checkpoint import load_model
    from vqconvert.inference import encode_audio, pad_to_hop

    model = load_model(tiny_checkpoint).model
    assert pad_to_hop(np.ones(1, np.float32)).shape == (64,)
    assert pad_to_hop(np.ones(128, np.float32)).shape == (128,)
    assert encode_audio(model, np.full(10, 0.1, np.float32)).shape == (1,)
    assert encode_audio(model, np.zeros(65, np.float32)).shape == (2,)


def test_encode_file_header_and_speaker_guess(tiny_checkpoint, tmp_path):
    from vqconvert.checkpoint import load_model
    from vqconvert.inference import encode_file, guess_speaker

    m = load_model(tiny_checkpoint)
    path = tmp_path / "spk-b" / "take1.wav"
    path.parent.mkdir()
    sf.write(path, 0.3 * np.sin(np.arange(4000) / 7.0), 16000)
    c = encode_file(m, path)
    assert (c.frames, c.samples, c.speaker, c.source) == (63, 4000, "spk-b", "take1.wav")
    assert c.fingerprint == m.fingerprint and c.codebook_size == m.config.codebook_size
    assert encode_file(m, path, speaker="someone").speaker == "someone"
    assert guess_speaker("x/spk-c_001.wav", m.speakers) == "spk-c"
    assert guess_speaker("x/unknown_001.wav", m.speakers) is None


# -- decoding ------------------------------------------------------------------------------------------


def test_decode_to_files_batched_and_trimmed(tiny_checkpoint, tmp_path):
    from vqconvert.checkpoint import load_model
    from vqconvert.decoding import DecodeJob, decode_codes, decode_to_files
    from vqconvert.sampling import SamplingOptions

    m = load_model(tiny_checkpoint)
    greedy = SamplingOptions(greedy=True)
    codes = [
        torch.randint(0, m.config.codebook_size, (n,), generator=torch.Generator().manual_seed(n)) for n in (10, 25, 4)
    ]
    jobs = [DecodeJob(c, i % 3, tmp_path / f"o{i}.wav", samples=c.numel() * 64 - 5, key=i) for i, c in enumerate(codes)]
    results = list(decode_to_files(m.model, jobs, greedy, batch_size=2, chunk_samples=300))
    assert [(j.key, e) for j, e in results] == [(0, None), (1, None), (2, None)]
    for i, c in enumerate(codes):
        data, sr = sf.read(tmp_path / f"o{i}.wav", dtype="float32")
        assert sr == 16000 and data.shape == (c.numel() * 64 - 5,)
    mem = decode_codes(m.model, codes, [0, 1, 2], greedy, batch_size=1)
    assert [w.shape[0] for w in mem] == [c.numel() * 64 for c in codes]
    # streamed to disk == in memory, up to 16-bit rounding
    data, _ = sf.read(tmp_path / "o1.wav", dtype="float32")
    assert np.abs(data - np.clip(mem[1][: data.size], -1, 1)).max() < 1e-3
    # resampled output
    out = list(decode_to_files(m.model, [DecodeJob(codes[0], 0, tmp_path / "r.wav")], greedy, sample_rate=8000))
    assert out[0][1] is None
    data, sr = sf.read(tmp_path / "r.wav")
    assert sr == 8000 and abs(data.shape[0] - 320) <= 1


def test_a_failing_batch_leaves_no_files(tiny_checkpoint, tmp_path, monkeypatch):
    import vqconvert.generate as gen
    from vqconvert.checkpoint import load_model
    from vqconvert.decoding import DecodeJob, decode_to_files

    m = load_model(tiny_checkpoint)

    def broken(model, codes, speakers, sampling, **kw):
        yield [torch.zeros(100) for _ in codes]
        raise RuntimeError("sampler exploded")

    monkeypatch.setattr(gen, "generate_stream", broken)
    (tmp_path / "exists.wav").write_bytes(b"keep")
    jobs = [
        DecodeJob(torch.zeros(5, dtype=torch.long), 0, tmp_path / "a.wav", key="a"),
        DecodeJob(torch.zeros(5, dtype=torch.long), 0, tmp_path / "exists.wav", key="b"),
    ]
    results = dict((j.key, e) for j, e in decode_to_files(m.model, jobs, batch_size=2))
    assert "sampler exploded" in str(results["a"]) and "already exists" in str(results["b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.wav"]
    assert (tmp_path / "exists.wav").read_bytes() == b"keep"


def test_convert_in_memory(tiny_checkpoint):
    from vqconvert.checkpoint import load_model
    from vqconvert.errors import SpeakerError
    from vqconvert.inference import convert
    from vqconvert.sampling import SamplingOptions

    m = load_model(tiny_checkpoint)
    audio = 0.3 * np.sin(np.arange(1000) / 5.0).astype(np.float32)
    outs = convert(m, audio, ["spk-a", 2], SamplingOptions(greedy=True))
    assert [o.shape for o in outs] == [(1000,), (1000,)]
    with pytest.raises(SpeakerError, match="closest"):
        convert(m, audio, ["spk-q"])


# -- streaming WAV writer -------------------------------------------------------------------------------


def test_wav_writer_streams_atomically(tmp_path):
    path = tmp_path / "out.wav"
    with open_wav_writer(path, 16000) as w:
        for _ in range(4):
            w.write(np.full(250, 0.25, np.float32))
            assert not path.exists()  # only the temp file until the end
        w.write(torch.full((10,), 2.0))  # clipped
    data, sr = sf.read(path, dtype="float32")
    assert sr == 16000 and data.shape == (1010,) and data[-1] == pytest.approx(1.0, abs=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
    with pytest.raises(OutputError, match="already exists"):
        with open_wav_writer(path, 16000):
            pass
    with pytest.raises(ZeroDivisionError):
        with open_wav_writer(tmp_path / "b.wav", 16000) as w:
            w.write(np.zeros(100))
            1 / 0  # noqa: B018
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_wav_writer_stdout_and_resampling(monkeypatch):
    for frames in (None, 1500):
        out = types.SimpleNamespace(buffer=io.BytesIO(), flush=lambda: None)
        monkeypatch.setattr(sys, "stdout", out)
        with open_wav_writer("-", 24000, source_rate=16000, frames=frames) as w:
            w.write(np.full(600, 0.1, np.float32))
            w.write(np.full(400, 0.1, np.float32))
        data = out.buffer.getvalue()
        audio = load_audio(io.BytesIO(data), 24000)
        assert abs(audio.shape[0] - 1500) <= 1
        if frames is not None:
            assert len(data) == 44 + 2 * frames
