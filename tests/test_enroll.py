"""`vqconvert enroll` and vqconvert.enroll on the `tiny` model: only the new speaker row changes, the NLL
of the new voice falls, the checkpoint lists the name, and bad input is one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from cli_helpers import cli, errors

from vqconvert.checkpoint import build_model, fingerprint, load_checkpoint, load_model
from vqconvert.enroll import EnrollConfig, check_new_name, clip_bits, enroll, extend_speakers


def voice(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A voice unlike the tiny corpus's: a low buzz with a formant-ish overtone and breath noise."""
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    sig = 0.3 * np.sign(np.sin(2 * np.pi * f0 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 5 * t)) ** 2
    sig = sig + 0.15 * np.sin(2 * np.pi * 6.3 * f0 * t) + 0.03 * rng.standard_normal(t.size)
    return sig.astype(np.float32)


def clips(tmp_path: Path, n: int = 2, seconds: float = 0.5) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / "newvoice" / f"nv_{i}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, voice(seconds, 90.0 + 7 * i, i), 16000)
        out.append(p)
    return out


def test_extend_speakers_copies_everything_and_adds_the_mean_row(tiny_checkpoint):
    base = build_model(load_checkpoint(tiny_checkpoint))
    new = extend_speakers(base)
    assert new.cfg.n_speakers == base.cfg.n_speakers + 1
    old, ext = base.state_dict(), new.state_dict()
    for k, v in old.items():
        if k == "decoder.speaker.weight":
            assert torch.equal(ext[k][:-1], v)
            assert torch.allclose(ext[k][-1], v.mean(0))
        else:
            assert torch.equal(ext[k], v), k
    assert fingerprint(new) == fingerprint(base)


def test_enroll_fits_only_the_new_row_and_lowers_its_nll(tiny_checkpoint):
    torch.manual_seed(0)
    ck = load_checkpoint(tiny_checkpoint)
    base = build_model(ck).eval()
    # The tiny run is 20 steps old: its speaker projection (zero-initialised) is still near zero and its
    # output near uniform, so no row could matter. A random projection and a sharper head make the
    # embedding steer the decoder.
    with torch.no_grad():
        base.decoder.speaker_proj.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
        base.decoder.head2.weight.mul_(10.0)
    audio = [voice(0.5, 90.0, 0), voice(0.5, 97.0, 1)]
    cfg = EnrollConfig(steps=40, lr=0.1, batch_size=2, crop_seconds=0.25, eval_seconds=1.0)
    res = enroll(base, list(ck["speakers"]), audio, cfg)
    assert res.index == base.cfg.n_speakers
    assert res.bits_after < res.bits_before - 0.1, (res.bits_before, res.bits_after)
    new_state, old_state = res.model.state_dict(), base.state_dict()
    for k, v in old_state.items():
        if k == "decoder.speaker.weight":
            assert torch.equal(new_state[k][:-1], v)
            assert not torch.allclose(new_state[k][-1], v.mean(0))
        else:
            assert torch.equal(new_state[k], v), k
    assert res.nearest in ck["speakers"]
    # clip_bits scores clips as enroll does: the same windows give the same figure
    assert clip_bits(res.model, audio, res.index, seconds=1.0) == pytest.approx(res.bits_after, abs=1e-5)
    assert all(not p.requires_grad for p in res.model.parameters())


def test_check_new_name():
    check_new_name("alice", ["bob"])
    for bad in ("bob", "", "12", "a b"):
        with pytest.raises(ValueError):
            check_new_name(bad, ["bob"])


def test_enroll_cli_writes_a_checkpoint_that_lists_the_name(tiny_checkpoint, tmp_path):
    paths = clips(tmp_path)
    out = tmp_path / "new.pt"
    r = cli(
        "enroll",
        tmp_path / "newvoice",
        "--name",
        "newbie",
        "-m",
        tiny_checkpoint,
        "-o",
        out,
        "--steps",
        "5",
        "--batch-size",
        "2",
        "--threads",
        "1",
    )
    assert r.exit_code == 0, r.stderr
    loaded = load_model(out)
    base = load_model(tiny_checkpoint)
    assert loaded.speakers == base.speakers + ["newbie"]
    assert loaded.fingerprint == base.fingerprint
    (entry,) = loaded.meta["metrics"]["enrolled"]
    assert entry["name"] == "newbie" and entry["config"]["steps"] == 5
    assert "wrote" in r.stderr
    # speakers lists it, and transfer can use it
    r = cli("speakers", "-m", out)
    assert "newbie" in r.stdout
    r = cli("transfer", paths[0], "-s", "newbie", "-m", out, "--greedy", "-o", tmp_path / "conv.wav")
    assert r.exit_code == 0, r.stderr
    assert sf.info(tmp_path / "conv.wav").frames == sf.info(paths[0]).frames
    # the output is never overwritten without --force
    before = out.read_bytes()
    r = cli("enroll", *paths, "--name", "other", "-m", tiny_checkpoint, "-o", out, "--steps", "1")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "already exists" in errors(r)[0]
    assert out.read_bytes() == before
    r = cli("enroll", *paths, "--name", "other", "-m", tiny_checkpoint, "-o", out, "--steps", "1", "--force")
    assert r.exit_code == 0, r.stderr
    assert load_model(out).speakers[-1] == "other"


def test_enroll_cli_bad_inputs(tiny_checkpoint, tmp_path):
    paths = clips(tmp_path, n=1)
    out = tmp_path / "x.pt"
    cases = [
        (["--name", "spk-a"], "already has a speaker"),
        (["--name", "7"], "digits"),
    ]
    for extra, why in cases:
        r = cli("enroll", *paths, *extra, "-m", tiny_checkpoint, "-o", out, "--steps", "1")
        assert r.exit_code == 1 and len(errors(r)) == 1 and why in errors(r)[0], r.stderr
    missing = tmp_path / "nope.wav"
    r = cli("enroll", missing, "--name", "n", "-m", tiny_checkpoint, "-o", out, "--steps", "1")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "nope.wav" in errors(r)[0]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    r = cli("enroll", corrupt, "--name", "n", "-m", tiny_checkpoint, "-o", out, "--steps", "1")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "corrupt.wav" in errors(r)[0]
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    r = cli("enroll", *paths, "--name", "n", "-m", broken, "-o", out, "--steps", "1")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "broken.pt" in errors(r)[0]
    r = cli("enroll", tmp_path / "empty_dir_glob_*.wav", "--name", "n", "-m", tiny_checkpoint, "-o", out)
    assert r.exit_code == 1 and len(errors(r)) == 1
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_enroll_help():
    r = cli("enroll", "-h")
    assert r.exit_code == 0 and "--name" in r.stdout and "--steps" in r.stdout
