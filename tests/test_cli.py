"""The inference, info and train commands, in process (CliRunner) and as real subprocesses."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from cli_helpers import cli, errors

from vqconvert import __version__
from vqconvert.codes import CodesFile


def wav(path: Path, seconds: float = 0.25, sr: int = 16000, f0: float = 220.0, channels: int = 1, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sig = (0.4 * np.sin(2 * np.pi * f0 * t) + 0.05 * np.sin(2 * np.pi * 3.1 * f0 * t)).astype(np.float32)
    sf.write(path, np.stack([sig] * channels, 1) if channels > 1 else sig, sr, **kw)
    return path


def subprocess_cli() -> list[str]:
    """The real CLI, as a subprocess."""
    return [sys.executable, "-m", "vqconvert"]


def sub_env(model: Path | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if model is not None:
        env["VQCONVERT_MODEL"] = str(model)
    return env


# -- entry point ---------------------------------------------------------------------------------------


def test_version_and_help_subprocess():
    exe = Path(sys.executable).with_name("vqconvert")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "vqconvert"]
    out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=120, env=sub_env())
    assert out.returncode == 0 and out.stdout.strip() == f"vqconvert {__version__}"
    out = subprocess.run([*argv, "-h"], capture_output=True, text=True, timeout=120, env=sub_env())
    assert out.returncode == 0
    for command in ("encode", "decode", "transfer", "speakers", "info", "train"):
        assert command in out.stdout


COMMANDS = ["encode", "decode", "transfer", "speakers", "info", "train", "evaluate", "export", "corpus"]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    result = cli(command, "-h")
    assert result.exit_code == 0 and "Usage" in result.stdout
    if command in ("encode", "decode", "transfer"):
        flat = " ".join(result.stdout.split())
        assert "--out-dir" in flat and "Exit status" in flat and "--from-list" in flat


# -- encode / decode / transfer ------------------------------------------------------------------------


def test_encode_decode_round_trip(tiny_checkpoint, tmp_path):
    src = wav(tmp_path / "a.wav")
    r = cli("encode", src, "-m", tiny_checkpoint)
    assert r.exit_code == 0, r.stderr
    assert "1 file: 1 ok, 0 failed" in r.stderr and r.stdout == ""
    codes = CodesFile.load(tmp_path / "a.vqc")
    assert (codes.frames, codes.samples, codes.source, codes.speaker) == (63, 4000, "a.wav", None)
    # no source speaker recorded: decode needs --speaker
    r = cli("decode", tmp_path / "a.vqc", "-o", tmp_path / "out.wav", "-m", tiny_checkpoint, "--greedy")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "--speaker" in errors(r)[0]
    assert not (tmp_path / "out.wav").exists()
    r = cli(
        "decode",
        tmp_path / "a.vqc",
        "-o",
        tmp_path / "out.wav",
        "-s",
        "spk-b",
        "-m",
        tiny_checkpoint,
        "--greedy",
    )
    assert r.exit_code == 0, r.stderr
    data, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and data.shape == (4000,)
    # the source speaker recorded at encode time is the default voice
    r = cli("encode", src, "-o", tmp_path / "s.vqc", "--speaker", "spk-c", "-m", tiny_checkpoint)
    assert r.exit_code == 0 and CodesFile.load(tmp_path / "s.vqc").speaker == "spk-c"
    r = cli("decode", tmp_path / "s.vqc", "-m", tiny_checkpoint, "--greedy", "--sample-rate", "8000")
    assert r.exit_code == 0, r.stderr
    data, sr = sf.read(tmp_path / "s.wav")
    assert sr == 8000 and data.shape == (2000,)


def test_transfer_to_two_speakers(tiny_checkpoint, tmp_path):
    src = wav(tmp_path / "in" / "x.wav", f0=180.0)
    r = cli("transfer", src, "-s", "spk-a", "-s", "2", "--greedy", "-m", tiny_checkpoint)
    assert r.exit_code == 0, r.stderr
    for name in ("x.spk-a.wav", "x.spk-c.wav"):
        data, sr = sf.read(tmp_path / "in" / name)
        assert sr == 16000 and data.shape == (4000,)
    r = cli(
        "transfer",
        src,
        "-s",
        "spk-b",
        "--greedy",
        "-o",
        tmp_path / "one.wav",
        "-m",
        tiny_checkpoint,
        "--sample-rate",
        "22050",
        "-b",
        "2",
    )
    assert r.exit_code == 0, r.stderr
    data, sr = sf.read(tmp_path / "one.wav")
    assert sr == 22050 and abs(data.shape[0] - 5512) <= 1


def test_batched_decode_of_several_files(tiny_checkpoint, tmp_path):
    for i, secs in enumerate((0.25, 0.1, 0.3)):
        wav(tmp_path / "in" / f"u{i}.wav", seconds=secs, f0=150.0 + 40 * i)
    assert cli("encode", tmp_path / "in", "--out-dir", tmp_path / "codes", "-m", tiny_checkpoint).exit_code == 0
    r = cli(
        "decode",
        tmp_path / "codes",
        "--out-dir",
        tmp_path / "dec",
        "-s",
        "spk-a",
        "-b",
        "2",
        "--greedy",
        "--seed",
        "1",
        "-m",
        tiny_checkpoint,
    )
    assert r.exit_code == 0, r.stderr
    assert "3 files: 3 ok, 0 failed" in r.stderr
    for i, secs in enumerate((0.25, 0.1, 0.3)):
        data, _ = sf.read(tmp_path / "dec" / f"u{i}.wav")
        assert data.shape == (int(secs * 16000),)


def test_default_temperature_is_the_documented_one(tiny_checkpoint, tmp_path):
    from vqconvert.config import DEFAULT_TEMPERATURE

    wav(tmp_path / "a.wav", seconds=0.1)
    assert cli("encode", tmp_path / "a.wav", "-o", tmp_path / "a.vqc", "-m", tiny_checkpoint).exit_code == 0
    out = {}
    for name, extra in (("default", ()), ("same", ("-t", str(DEFAULT_TEMPERATURE))), ("one", ("-t", "1.0"))):
        r = cli(
            "decode",
            tmp_path / "a.vqc",
            "-o",
            tmp_path / f"{name}.wav",
            "-s",
            "spk-a",
            "--seed",
            "5",
            *extra,
            "-m",
            tiny_checkpoint,
        )
        assert r.exit_code == 0, r.stderr
        out[name] = sf.read(tmp_path / f"{name}.wav")[0]
    assert DEFAULT_TEMPERATURE == 0.8
    assert (out["default"] == out["same"]).all() and not (out["default"] == out["one"]).all()


def test_from_list_on_stdin_and_out_dir_mirroring(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wav(tmp_path / "data" / "p1" / "a.wav")
    wav(tmp_path / "data" / "p2" / "deep" / "b.flac", format="FLAC")
    r = cli(
        "encode",
        "--from-list",
        "-",
        "--out-dir",
        "out",
        model=tiny_checkpoint,
        input="# inputs\ndata/p1/a.wav\n\ndata/p2/deep/b.flac\n",
    )
    assert r.exit_code == 0, r.stderr
    assert sorted(str(p.relative_to("out")) for p in Path("out").rglob("*.vqc")) == [
        "p1/a.vqc",
        "p2/deep/b.vqc",
    ]
    # a directory argument mirrors relative to itself; a quoted glob is expanded by vqconvert
    r = cli("encode", "data", "--out-dir", "out2", model=tiny_checkpoint)
    assert r.exit_code == 0 and (tmp_path / "out2" / "p2" / "deep" / "b.vqc").exists()
    r = cli("encode", "data/*/a.wav", "--out-dir", "out3", model=tiny_checkpoint)
    assert r.exit_code == 0 and [p.name for p in Path("out3").rglob("*")] == ["a.vqc"]


def test_stdin_to_stdout(tiny_checkpoint, tmp_path):
    audio = wav(tmp_path / "a.wav").read_bytes()
    r = cli("encode", "-", "-o", "-", "-s", "spk-a", input=audio, model=tiny_checkpoint)
    assert r.exit_code == 0, r.stderr
    codes = CodesFile.from_bytes(r.stdout_bytes)
    assert codes.frames == 63 and codes.speaker == "spk-a"
    r = cli("decode", "-", "--greedy", input=r.stdout_bytes, model=tiny_checkpoint)  # stdin -> stdout
    assert r.exit_code == 0, r.stderr
    data, sr = sf.read(io.BytesIO(r.stdout_bytes))
    assert sr == 16000 and data.shape == (4000,)
    assert list(tmp_path.iterdir()) == [tmp_path / "a.wav"]


def test_text_format(tiny_checkpoint, tmp_path):
    wav(tmp_path / "a.wav")
    wav(tmp_path / "b.wav", seconds=0.1)
    r = cli("encode", tmp_path / "a.wav", tmp_path / "b.wav", "--format", "text", model=tiny_checkpoint)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [len(ln.split()) for ln in lines] == [63, 25]
    assert all(0 <= int(v) < 32 for v in lines[0].split())
    assert not list(tmp_path.glob("*.vqc"))


def test_directory_of_20_with_one_corrupt(tiny_checkpoint, tmp_path):
    d = tmp_path / "many"
    for i in range(20):
        wav(d / f"clip{i:02d}.wav", seconds=0.1, f0=100.0 + 10 * i)
    (d / "clip07.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunk")
    (d / "notes.txt").write_text("not audio, not an input")
    r = cli("encode", d, model=tiny_checkpoint)
    assert r.exit_code == 1
    assert len(list(d.glob("*.vqc"))) == 19 and not (d / "clip07.vqc").exists()
    errs = errors(r)
    assert len(errs) == 1 and errs[0].startswith(f"error: {d / 'clip07.wav'}: ")
    assert "20 files: 19 ok, 1 failed" in r.stderr and "Traceback" not in r.stderr
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temp files


def test_two_inputs_with_one_output_name(tiny_checkpoint, tmp_path):
    wav(tmp_path / "a.wav")
    wav(tmp_path / "a.flac", format="FLAC")
    r = cli("encode", tmp_path, model=tiny_checkpoint)
    assert r.exit_code == 1 and "1 ok, 1 failed" in r.stderr
    assert errors(r) == [
        f"error: {tmp_path / 'a.wav'}: output {tmp_path / 'a.vqc'} would also be written from {tmp_path / 'a.flac'}"
    ]
    assert CodesFile.load(tmp_path / "a.vqc").source == "a.flac"


def test_export_writes_a_half_precision_copy_with_the_same_fingerprint(tiny_checkpoint, tmp_path):
    from vqconvert.checkpoint import load_checkpoint, load_model

    dest = tmp_path / "small.pt"
    r = cli("export", str(tiny_checkpoint), str(dest))
    assert r.exit_code == 0, r.output
    ckpt = load_checkpoint(dest)
    assert ckpt["optimizer"] is None
    assert all(v.dtype != torch.float32 for v in ckpt["model"].values() if v.is_floating_point())
    assert load_model(dest).fingerprint == load_model(tiny_checkpoint).fingerprint
    assert cli("export", str(tiny_checkpoint), str(dest)).exit_code == 1  # exists, no --force


def test_force(tiny_checkpoint, tmp_path):
    src = wav(tmp_path / "a.wav")
    (tmp_path / "a.vqc").write_bytes(b"old")
    r = cli("encode", src, model=tiny_checkpoint)
    assert r.exit_code == 1 and "--force" in errors(r)[0] and (tmp_path / "a.vqc").read_bytes() == b"old"
    r = cli("encode", src, "--force", model=tiny_checkpoint)
    assert r.exit_code == 0 and CodesFile.load(tmp_path / "a.vqc").frames == 63


@pytest.mark.parametrize(
    "args",
    [
        ["encode", "{a}", "{b}", "-o", "x.vqc"],
        ["encode"],
        ["transfer", "{a}"],
        ["transfer", "{a}", "-s", "spk-a", "-s", "spk-b", "-o", "x.wav"],
        ["encode", "-", "--from-list", "-"],
        ["encode", "{a}", "--format", "text", "-o", "x.txt"],
        ["encode", "{a}", "-o", "x.vqc", "--out-dir", "d"],
        ["decode", "{a}", "--backend", "gpu"],
    ],
)
def test_usage_errors_exit_2(tiny_checkpoint, tmp_path, args):
    a, b = wav(tmp_path / "a.wav"), wav(tmp_path / "b.wav")
    before = sorted(tmp_path.rglob("*"))
    r = cli(*[x.format(a=a, b=b) for x in args], model=tiny_checkpoint, input="")
    assert r.exit_code == 2
    assert len(errors(r)) == 1 and "Traceback" not in r.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_speakers_and_info(tiny_checkpoint, tmp_path):
    import json

    r = cli("speakers", "-m", tiny_checkpoint)
    assert r.exit_code == 0 and r.stdout.split() == [
        "index",
        "name",
        "0",
        "spk-a",
        "1",
        "spk-b",
        "2",
        "spk-c",
    ]
    r = cli("speakers", "--json", model=tiny_checkpoint)
    assert json.loads(r.stdout)[2] == {"index": 2, "name": "spk-c"}
    r = cli("info", tiny_checkpoint.parent, "--json")  # a run directory works too
    info = json.loads(r.stdout)
    assert info["preset"] == "tiny" and info["codebook_size"] == 32 and info["speakers"] == 3
    assert info["hop"] == 64 and info["sample_rate"] == 16000 and info["steps"] == 20
    assert info["decoder_conditioning"].startswith("codes through one k3 conv")
    assert info["parameters"]["total"] > 0 and len(info["fingerprint"]) == 16
    r = cli("info", model=tiny_checkpoint)  # the default model
    assert r.exit_code == 0 and "fingerprint:" in r.stdout and "tiny" in r.stdout
    cli("encode", wav(tmp_path / "a.wav"), model=tiny_checkpoint)
    r = cli("info", tmp_path / "a.vqc", "--json")
    info = json.loads(r.stdout)
    assert info["kind"] == "codes" and info["frames"] == 63 and info["duration"] == 0.25
    assert info["fingerprint"] == json.loads(cli("info", tiny_checkpoint, "--json").stdout)["fingerprint"]
    r = cli("info", tmp_path / "a.vqc")
    assert r.exit_code == 0 and "frames:" in r.stdout and "bitrate:" in r.stdout


def test_train_command_and_resume(tiny_checkpoint, tmp_path):
    corpus = tiny_checkpoint.parent.parent / "corpus"
    base = [
        "train",
        corpus,
        "-o",
        tmp_path / "run",
        "--preset",
        "tiny",
        "--batch-size",
        "2",
        "--crop-seconds",
        "0.125",
        "--validate-every",
        "0",
        "--checkpoint-every",
        "1",
        "--keep-every",
        "0",
        "--warmup-steps",
        "1",
        "--val-fraction",
        "0",
        "--cache-dir",
        tmp_path / "cache",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--seed",
        "3",
        "--lr",
        "1e-3",
        "--lr-schedule",
        "constant",
        "--amp",
        "off",
        "-q",
    ]
    r = cli(*base, "--steps", "2")
    assert r.exit_code == 0, r.stderr
    from vqconvert.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert ckpt["step"] == 2 and ckpt["train_config"]["crop_seconds"] == 0.125
    assert ckpt["train_config"]["lr_schedule"] == "constant" and ckpt["train_config"]["seed"] == 3
    r = cli(*base, "--steps", "3", "--resume")
    assert r.exit_code == 0, r.stderr
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["step"] == 3
    r = cli(*base[:2], "-o", tmp_path / "run2", "--preset", "huge", "--steps", "1")
    assert r.exit_code == 2 and len(errors(r)) == 1
    r = cli("train", tmp_path / "nowhere", "-o", tmp_path / "run3", "--steps", "1", "--cache-dir", tmp_path / "c")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_subprocess_pipe_encode_to_decode(tiny_checkpoint, tmp_path):
    """`vqconvert encode x.wav -o - | vqconvert decode - -o y.wav`, as real processes."""
    src = wav(tmp_path / "x.wav", seconds=0.25)
    argv = subprocess_cli()
    env = sub_env(tiny_checkpoint)
    enc = subprocess.Popen(
        [*argv, "encode", str(src), "-o", "-", "-s", "spk-b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    dec = subprocess.run(
        [*argv, "decode", "-", "-o", str(tmp_path / "y.wav"), "--greedy"],
        stdin=enc.stdout,
        capture_output=True,
        env=env,
        timeout=300,
    )
    enc.stdout.close()
    enc_err = enc.stderr.read().decode()
    assert enc.wait(timeout=300) == 0, enc_err
    assert dec.returncode == 0, dec.stderr.decode()
    data, sr = sf.read(tmp_path / "y.wav")
    assert sr == 16000 and data.shape == (4000,)
    assert "Traceback" not in enc_err + dec.stderr.decode()


@pytest.mark.slow
def test_subprocess_failure_exit_code(tiny_checkpoint, tmp_path):
    good = wav(tmp_path / "good.wav", seconds=0.1)
    bad = tmp_path / "bad.wav"
    bad.write_text("this is text\n")
    out = subprocess.run(
        [*subprocess_cli(), "transfer", str(good), str(bad), "-s", "spk-a", "--greedy"],
        capture_output=True,
        text=True,
        env=sub_env(tiny_checkpoint),
        timeout=300,
    )
    assert out.returncode == 1
    errs = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert errs == [f"error: {bad}: not an audio file (format not recognised)"]
    assert (tmp_path / "good.spk-a.wav").exists() and not (tmp_path / "bad.spk-a.wav").exists()
    assert "2 files: 1 ok, 1 failed" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_sigterm_mid_decode_leaves_no_partial_output(tiny_checkpoint, tmp_path):
    import signal
    import time

    from vqconvert.checkpoint import load_model

    loaded = load_model(tiny_checkpoint)
    frames = 250 * 600  # ten minutes of codes: still decoding when the signal comes
    idx = np.random.default_rng(0).integers(0, loaded.config.codebook_size, frames)
    codes = tmp_path / "long.vqc"
    CodesFile(idx, loaded.config.codebook_size, loaded.fingerprint, speaker="spk-a").save(codes)
    proc = subprocess.Popen(
        [*subprocess_cli(), "decode", str(codes), "-o", str(tmp_path / "long.wav")],
        env=sub_env(tiny_checkpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".long.wav.*")):
        time.sleep(0.05)  # the temp output exists: decoding is under way
    assert list(tmp_path.glob(".long.wav.*")), "decoding never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.vqc"]  # no output, no temp file
