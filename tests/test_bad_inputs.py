"""Bad inputs: each case exits 1 with exactly one `error:` line on stderr, no traceback, no output file
left behind, and every file that was there before unchanged (byte for byte)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from vqconvert.cli import app
from vqconvert.codes import MAGIC, CodesFile

runner = CliRunner()


class Gadget:
    """A custom class: a checkpoint pickling it must be refused by the weights-only loader."""

    def __init__(self) -> None:
        self.payload = "arbitrary code could run here"


def _wav(path: Path, seconds: float = 0.25, sr: int = 16000, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.4 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), sr, **kw)
    return path


def _codes(tmp: Path, ckpt: Path) -> Path:
    """A valid codes file for the tiny model, made through the CLI."""
    src = _wav(tmp / "src" / "c.wav")
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp / "good.vqc"), "-s", "spk-a", "-m", str(ckpt)])
    assert r.exit_code == 0, r.stderr
    return tmp / "good.vqc"


def _edit_codes(tmp: Path, ckpt: Path, name: str, edit) -> Path:
    data = bytearray(_codes(tmp, ckpt).read_bytes())
    (tmp / "good.vqc").unlink()
    (tmp / "src" / "c.wav").unlink()
    (tmp / "src").rmdir()
    out = tmp / name
    out.write_bytes(bytes(edit(data)))
    return out


def _with_header(data: bytearray, **changes) -> bytes:
    (n,) = struct.unpack("<I", data[10:14])
    head = json.loads(data[14 : 14 + n])
    head.update(changes)
    new = json.dumps(head).encode()
    return bytes(data[:10]) + struct.pack("<I", len(new)) + new + bytes(data[14 + n :])


# Each case: (id, builder(tmp, ckpt) -> argv, text expected in the error line).
def c_missing(tmp, ckpt):
    return ["encode", str(tmp / "missing.wav"), "-m", str(ckpt)]


def c_empty(tmp, ckpt):
    (tmp / "empty.wav").write_bytes(b"")
    return ["encode", str(tmp / "empty.wav"), "-m", str(ckpt)]


def c_text_as_wav(tmp, ckpt):
    (tmp / "text.wav").write_text("hello, I am not audio\n" * 20)
    return ["encode", str(tmp / "text.wav"), "-m", str(ckpt)]


def c_truncated_wav(tmp, ckpt):
    data = _wav(tmp / "full.wav").read_bytes()
    (tmp / "full.wav").unlink()
    (tmp / "cut.wav").write_bytes(data[: len(data) // 2])
    return ["encode", str(tmp / "cut.wav"), "-m", str(ckpt)]


def c_nan_samples(tmp, ckpt):
    sig = np.full(4000, 0.1, np.float32)
    sig[100] = np.nan
    sf.write(tmp / "nan.wav", sig, 16000, subtype="FLOAT")
    return ["encode", str(tmp / "nan.wav"), "-m", str(ckpt)]


def c_zero_length(tmp, ckpt):
    sf.write(tmp / "zero.wav", np.zeros(0, np.float32), 16000)
    return ["encode", str(tmp / "zero.wav"), "-m", str(ckpt)]


def c_transfer_truncated(tmp, ckpt):
    data = _wav(tmp / "full.wav").read_bytes()
    (tmp / "full.wav").unlink()
    (tmp / "cut.wav").write_bytes(data[:200])
    return ["transfer", str(tmp / "cut.wav"), "-s", "spk-a", "--greedy", "-m", str(ckpt)]


def c_dir_without_audio(tmp, ckpt):
    (tmp / "docs").mkdir()
    (tmp / "docs" / "readme.txt").write_text("no audio here")
    return ["encode", str(tmp / "docs"), "-m", str(ckpt)]


def c_glob_no_match(tmp, ckpt):
    return ["encode", str(tmp / "nothing*.wav"), "-m", str(ckpt)]


def c_list_with_missing(tmp, ckpt):
    (tmp / "list.txt").write_text(f"{tmp / 'gone.wav'}\n")
    return ["encode", "--from-list", str(tmp / "list.txt"), "-m", str(ckpt)]


def c_unknown_speaker(tmp, ckpt):
    _wav(tmp / "a.wav")
    return ["transfer", str(tmp / "a.wav"), "-s", "spk-z", "--greedy", "-m", str(ckpt)]


def c_unknown_decode_speaker(tmp, ckpt):
    _codes(tmp, ckpt)
    return ["decode", str(tmp / "good.vqc"), "-s", "nobody", "-o", str(tmp / "o.wav"), "-m", str(ckpt)]


def c_corrupt_checkpoint(tmp, ckpt):
    _wav(tmp / "a.wav")
    (tmp / "bad.pt").write_bytes(np.random.default_rng(0).bytes(5000))
    return ["encode", str(tmp / "a.wav"), "-m", str(tmp / "bad.pt")]


def c_tiny_checkpoint_file(tmp, ckpt):
    (tmp / "junk.pt").write_bytes(b"junk")  # torch.load raises struct.error on 4 bytes
    return ["speakers", "-m", str(tmp / "junk.pt")]


def c_truncated_checkpoint(tmp, ckpt):
    _wav(tmp / "a.wav")
    data = ckpt.read_bytes()
    (tmp / "cut.pt").write_bytes(data[: len(data) // 2])
    return ["encode", str(tmp / "a.wav"), "-m", str(tmp / "cut.pt")]


def c_pickled_code_checkpoint(tmp, ckpt):
    _wav(tmp / "a.wav")
    torch.save({"format": "vqconvert-checkpoint", "version": 1, "evil": Gadget()}, tmp / "evil.pt")
    return ["encode", str(tmp / "a.wav"), "-m", str(tmp / "evil.pt")]


def c_wrong_format_checkpoint(tmp, ckpt):
    _wav(tmp / "a.wav")
    torch.save({"state_dict": {"w": torch.zeros(3)}}, tmp / "other.pt")
    return ["encode", str(tmp / "a.wav"), "-m", str(tmp / "other.pt")]


def c_missing_checkpoint(tmp, ckpt):
    _wav(tmp / "a.wav")
    return ["encode", str(tmp / "a.wav"), "-m", str(tmp / "nope.pt")]


def c_codes_truncated(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "t.vqc", lambda d: d[:-7])
    return ["decode", str(path), "-m", str(ckpt)]


def c_codes_wrong_magic(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "m.vqc", lambda d: b"NOTCODES" + d[8:])
    return ["decode", str(path), "-m", str(ckpt)]


def c_codes_index_out_of_range(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "r.vqc", lambda d: d[:-2] + struct.pack("<H", 32))
    return ["decode", str(path), "-m", str(ckpt)]


def c_codes_other_model(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "o.vqc", lambda d: _with_header(d, fingerprint="0000000000000000"))
    return ["decode", str(path), "-m", str(ckpt)]


def c_codes_other_codebook(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "k.vqc", lambda d: _with_header(d, codebook_size=512))
    return ["decode", str(path), "-m", str(ckpt)]


def c_codes_unknown_version(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "v.vqc", lambda d: d[:8] + struct.pack("<H", 9) + d[10:])
    return ["decode", str(path), "-m", str(ckpt)]


def c_codes_broken_json(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "j.vqc", lambda d: d[:14] + b"#" + d[15:])
    return ["decode", str(path), "-m", str(ckpt)]


def c_codes_without_speaker(tmp, ckpt):
    path = _edit_codes(tmp, ckpt, "n.vqc", lambda d: _with_header(d, speaker=None))
    return ["decode", str(path), "-m", str(ckpt)]


def c_output_exists(tmp, ckpt):
    _wav(tmp / "a.wav")
    (tmp / "a.vqc").write_bytes(b"precious")
    return ["encode", str(tmp / "a.wav"), "-m", str(ckpt)]


def c_transfer_output_exists(tmp, ckpt):
    _wav(tmp / "a.wav")
    (tmp / "a.spk-b.wav").write_bytes(b"precious")
    return ["transfer", str(tmp / "a.wav"), "-s", "spk-b", "--greedy", "-m", str(ckpt)]


def c_out_dir_not_writable(tmp, ckpt):
    _wav(tmp / "a.wav")
    (tmp / "plainfile").write_text("a file, not a directory")
    return ["encode", str(tmp / "a.wav"), "--out-dir", str(tmp / "plainfile" / "sub"), "-m", str(ckpt)]


def c_output_parent_missing(tmp, ckpt):
    _wav(tmp / "a.wav")
    (tmp / "plainfile").write_text("a file, not a directory")
    return ["encode", str(tmp / "a.wav"), "-o", str(tmp / "plainfile" / "x.vqc"), "-m", str(ckpt)]


def c_input_is_output(tmp, ckpt):
    _wav(tmp / "a.wav")
    return ["encode", str(tmp / "a.wav"), "-o", str(tmp / "a.wav"), "--force", "-m", str(ckpt)]


def c_decode_input_is_output(tmp, ckpt):
    _codes(tmp, ckpt)
    return ["decode", str(tmp / "good.vqc"), "-o", str(tmp / "good.vqc"), "--force", "-m", str(ckpt)]


def c_audio_given_to_decode(tmp, ckpt):
    _wav(tmp / "a.wav")
    return ["decode", str(tmp / "a.wav"), "-o", str(tmp / "x.wav"), "-m", str(ckpt)]


def c_info_of_garbage(tmp, ckpt):
    (tmp / "g.bin").write_bytes(MAGIC + b"\x01")
    return ["info", str(tmp / "g.bin")]


CASES = [
    (c_missing, "no such file"),
    (c_empty, "empty"),
    (c_text_as_wav, "not an audio file"),
    (c_truncated_wav, "truncated"),
    (c_nan_samples, "NaN"),
    (c_zero_length, "no audio"),
    (c_transfer_truncated, "truncated"),
    (c_dir_without_audio, "no audio files"),
    (c_glob_no_match, "no files match"),
    (c_list_with_missing, "no such file"),
    (c_unknown_speaker, "closest: spk-"),
    (c_unknown_decode_speaker, "unknown speaker"),
    (c_corrupt_checkpoint, "checkpoint"),
    (c_tiny_checkpoint_file, "checkpoint"),
    (c_truncated_checkpoint, "checkpoint"),
    (c_pickled_code_checkpoint, "refused"),
    (c_wrong_format_checkpoint, "not a vqconvert checkpoint"),
    (c_missing_checkpoint, "not found"),
    (c_codes_truncated, "truncated"),
    (c_codes_wrong_magic, "wrong magic"),
    (c_codes_index_out_of_range, "out of range"),
    (c_codes_other_model, "another model"),
    (c_codes_other_codebook, "codebook"),
    (c_codes_unknown_version, "version 9"),
    (c_codes_broken_json, "JSON"),
    (c_codes_without_speaker, "--speaker"),
    (c_output_exists, "already exists"),
    (c_transfer_output_exists, "already exists"),
    (c_out_dir_not_writable, "is not a directory"),
    (c_output_parent_missing, "is not a directory"),
    (c_input_is_output, "is the input file"),
    (c_decode_input_is_output, "is the input file"),
    (c_audio_given_to_decode, "not a vqconvert codes file"),
    (c_info_of_garbage, "truncated"),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize(("build", "expected"), CASES, ids=[c.__name__[2:] for c, _ in CASES])
def test_bad_input(build, expected, tmp_path, tiny_checkpoint):
    argv = build(tmp_path, tiny_checkpoint)
    before = _snapshot(tmp_path)
    ckpt_before = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    result = runner.invoke(app, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr  # one line, nothing else
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert _snapshot(tmp_path) == before  # nothing new, nothing changed, no temp files
    assert hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest() == ckpt_before


def test_8khz_stereo_24bit_is_fine(tmp_path, tiny_checkpoint):
    """Any rate / channel count / sample format is read: downmixed and resampled to 16 kHz."""
    t = np.arange(2000) / 8000  # 0.25 s
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 300 * t), 0.3 * np.sin(2 * np.pi * 450 * t)], 1)
    sf.write(tmp_path / "s.wav", stereo, 8000, subtype="PCM_24")
    r = runner.invoke(app, ["encode", str(tmp_path / "s.wav"), "-m", str(tiny_checkpoint)])
    assert r.exit_code == 0, r.stderr
    codes = CodesFile.load(tmp_path / "s.vqc")
    assert codes.samples == 4000 and codes.frames == 63
    r = runner.invoke(
        app,
        [
            "transfer",
            str(tmp_path / "s.wav"),
            "-s",
            "spk-c",
            "--greedy",
            "-m",
            str(tiny_checkpoint),
            "--sample-rate",
            "8000",
        ],
    )
    assert r.exit_code == 0, r.stderr
    data, sr = sf.read(tmp_path / "s.spk-c.wav")
    assert sr == 8000 and data.shape == (2000,)


def test_several_inputs_with_one_output_is_a_usage_error(tmp_path, tiny_checkpoint):
    """-o names one output, so it takes one input: exit 2 (usage), one error line, nothing written."""
    a, b = _wav(tmp_path / "a.wav"), _wav(tmp_path / "b.wav")
    before = _snapshot(tmp_path)
    r = runner.invoke(app, ["encode", str(a), str(b), "-o", str(tmp_path / "x.vqc"), "-m", str(tiny_checkpoint)])
    assert r.exit_code == 2
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] == [
        "error: -o/--output takes a single input with a single output; use --out-dir for several"
    ]
    assert _snapshot(tmp_path) == before
