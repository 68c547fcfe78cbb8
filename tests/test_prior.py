"""The code prior on `tiny`: it learns structure a unigram model cannot, its file is tied to the VQ-VAE's
fingerprint, `train-prior` and `sample` work end to end, and bad input is one line and exit 1."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from cli_helpers import cli, errors
from conftest import TINY_SPEAKERS, write_tiny_corpus

from vqconvert.codes import CodesFile
from vqconvert.prior import CodePrior, PriorConfig, PriorError, default_prior_path, load_prior, save_prior
from vqconvert.prior.train import (
    PriorTrainConfig,
    Utterance,
    cross_unigram_bits,
    split_utterances,
    train_prior,
    unigram_entropy,
)


def cyclic_utterances(k: int = 16, n: int = 24, frames: int = 60) -> list[Utterance]:
    """Speaker A counts up through the codes, speaker B counts down; each code repeats twice. Every code
    is equally frequent (unigram entropy log2 K) but the next code is nearly determined."""
    utts = []
    rng = np.random.default_rng(0)
    for i in range(n):
        spk = "A" if i % 2 == 0 else "B"
        start = int(rng.integers(0, k))
        step = 1 if spk == "A" else -1
        seq = np.array([(start + step * (t // 2)) % k for t in range(frames)], np.int64)
        utts.append(Utterance(seq, spk, f"u{i:03d}"))
    return utts


def test_unigram_entropy_and_split():
    u = [Utterance(np.array([0, 1, 2, 3] * 4), "A", "x")]
    assert unigram_entropy(u, 8) == pytest.approx(2.0)
    assert cross_unigram_bits(u, u, 8) > 2.0  # add-one smoothing costs a little
    utts = cyclic_utterances(n=200)
    train, val = split_utterances(utts, 0.1)
    assert 5 <= len(val) <= 40 and len(train) + len(val) == 200
    assert split_utterances(utts, 0.1)[1] == val  # deterministic
    assert not {u.name for u in train} & {u.name for u in val}


def test_prior_learns_what_the_unigram_cannot():
    torch.manual_seed(0)
    utts = cyclic_utterances()
    train, val = utts[:20], utts[20:]
    cfg = PriorTrainConfig(
        preset="tiny", steps=150, batch_size=8, seq_frames=32, lr=1e-2, warmup_steps=10, validate_every=0
    )
    prior, m = train_prior(train, val, ["A", "B"], 16, cfg)
    assert m["log2_k"] == 4.0
    assert m["unigram_entropy_val"] > 3.8  # the codes are (almost) uniform
    assert m["val_bits_per_code"] < 2.0, m  # but predictable from the past and the speaker
    # speaker-conditioned: A's codes go up, B's go down
    seq = prior.sample(torch.tensor([0, 1]), 40, temperature=0.0)
    diffs = [(torch.diff(s[10:]) % 16).tolist() for s in seq]
    assert sum(d in (0, 1) for d in diffs[0]) >= 25
    assert sum(d in (0, 15) for d in diffs[1]) >= 25


def test_sampling_is_seeded_and_in_range():
    prior = CodePrior(PriorConfig(codebook_size=16, n_speakers=2, embed_dim=8, speaker_dim=4, hidden=8))
    a = prior.sample(torch.tensor([1]), 30, generator=torch.Generator().manual_seed(3))
    b = prior.sample(torch.tensor([1]), 30, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (1, 30) and 0 <= int(a.min()) and int(a.max()) < 16


def test_store_round_trip_and_refusals(tmp_path):
    prior = CodePrior(PriorConfig(codebook_size=16, n_speakers=2, embed_dim=8, speaker_dim=4, hidden=8))
    path = tmp_path / "m.prior.pt"
    save_prior(path, prior, ["A", "B"], "abcd", metrics={"val_bits_per_code": 1.5})
    lp = load_prior(path)
    assert lp.speakers == ["A", "B"] and lp.fingerprint == "abcd" and lp.metrics["val_bits_per_code"] == 1.5
    for k, v in prior.state_dict().items():
        assert torch.equal(lp.prior.state_dict()[k], v)
    assert lp.speaker_index("B") == 1
    with pytest.raises(PriorError, match="no speaker 'C'"):
        lp.speaker_index("C")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(PriorError, match="not a readable prior"):
        load_prior(tmp_path / "junk.pt")
    torch.save({"format": "vqconvert-checkpoint"}, tmp_path / "vq.pt")
    with pytest.raises(PriorError, match="not a vqconvert prior"):
        load_prior(tmp_path / "vq.pt")
    with pytest.raises(PriorError, match="not found"):
        load_prior(tmp_path / "none.prior.pt")
    assert default_prior_path(Path("models/x.pt")) == Path("models/x.prior.pt")


@pytest.fixture(scope="module")
def tiny_codes(tiny_checkpoint, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("prior_codes")
    corpus = write_tiny_corpus(base / "corpus", per_speaker=4, seconds=0.5)
    out = base / "codes"
    r = cli("encode", corpus, "--out-dir", out, "-m", tiny_checkpoint)
    assert r.exit_code == 0, r.stderr
    return out


def test_train_prior_and_sample_cli(tiny_checkpoint, tiny_codes, tmp_path):
    prior_path = tmp_path / "tiny.prior.pt"
    r = cli(
        "train-prior",
        tiny_codes,
        "-m",
        tiny_checkpoint,
        "-o",
        prior_path,
        "--preset",
        "tiny",
        "--steps",
        "30",
        "--batch-size",
        "4",
        "--seq-frames",
        "32",
        "--val-fraction",
        "0.2",
        "--threads",
        "1",
    )
    assert r.exit_code == 0, r.stderr
    assert "bits/code" in r.stderr and "log2(K) 5.00" in r.stderr
    lp = load_prior(prior_path)
    assert sorted(lp.speakers) == sorted(TINY_SPEAKERS)
    assert lp.metrics["steps"] == 30 and lp.metrics["log2_k"] == math.log2(32)
    assert 0 < lp.metrics["unigram_entropy_train"] <= 5.0
    out = tmp_path / "gen.wav"
    r = cli(
        "sample",
        "--speaker",
        "spk-b",
        "--seconds",
        "0.1",
        "-o",
        out,
        "-m",
        tiny_checkpoint,
        "--prior",
        prior_path,
        "--seed",
        "1",
        "--save-codes",
        tmp_path / "gen.vqc",
    )
    assert r.exit_code == 0, r.stderr
    info = sf.info(out)
    assert info.samplerate == 16000 and info.frames == round(0.1 * 250) * 64
    codes = CodesFile.load(tmp_path / "gen.vqc")
    assert codes.frames == 25 and codes.speaker == "spk-b"
    # same seed, same codes
    r = cli(
        "sample",
        "--speaker",
        "spk-b",
        "--seconds",
        "0.1",
        "-o",
        tmp_path / "gen2.wav",
        "-m",
        tiny_checkpoint,
        "--prior",
        prior_path,
        "--seed",
        "1",
        "--save-codes",
        tmp_path / "gen2.vqc",
    )
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(CodesFile.load(tmp_path / "gen2.vqc").indices, codes.indices)
    # never overwritten without --force
    r = cli("sample", "--speaker", "spk-b", "--seconds", "0.1", "-o", out, "-m", tiny_checkpoint, "--prior", prior_path)
    assert r.exit_code == 1 and len(errors(r)) == 1 and "already exists" in errors(r)[0]
    r = cli("train-prior", tiny_codes, "-m", tiny_checkpoint, "-o", prior_path, "--preset", "tiny", "--steps", "1")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "already exists" in errors(r)[0]


def test_prior_refused_against_another_model_and_unknown_speaker(tiny_checkpoint, tiny_codes, tmp_path):
    prior_path = tmp_path / "p.prior.pt"
    r = cli(
        "train-prior",
        tiny_codes,
        "-m",
        tiny_checkpoint,
        "-o",
        prior_path,
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--seq-frames",
        "16",
        "--val-fraction",
        "0",
    )
    assert r.exit_code == 0, r.stderr
    lp = load_prior(prior_path)
    save_prior(tmp_path / "other.prior.pt", lp.prior, lp.speakers, "0123456789abcdef")
    r = cli(
        "sample", "-s", "spk-a", "-o", tmp_path / "x.wav", "-m", tiny_checkpoint, "--prior", tmp_path / "other.prior.pt"
    )
    assert r.exit_code == 1 and len(errors(r)) == 1 and "0123456789abcdef" in errors(r)[0]
    r = cli("sample", "-s", "nobody", "-o", tmp_path / "x.wav", "-m", tiny_checkpoint, "--prior", prior_path)
    assert r.exit_code == 1 and len(errors(r)) == 1 and "unknown speaker" in errors(r)[0]
    r = cli("sample", "-s", "spk-a", "-o", tmp_path / "x.wav", "-m", tiny_checkpoint, "--prior", tmp_path / "none.pt")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "not found" in errors(r)[0]
    # the default prior is the model's name with .prior.pt: none beside the tiny run's latest.pt
    r = cli("sample", "-s", "spk-a", "-o", tmp_path / "x.wav", "-m", tiny_checkpoint)
    assert r.exit_code == 1 and len(errors(r)) == 1 and "latest.prior.pt" in errors(r)[0]
    assert not (tmp_path / "x.wav").exists()
    # codes of another model, or without a speaker, are refused by train-prior
    bad = tmp_path / "bad"
    bad.mkdir()
    CodesFile(np.zeros(10, np.uint16), 32, "ffffffffffffffff", speaker="spk-a").save(bad / "a.vqc")
    r = cli("train-prior", bad, "-m", tiny_checkpoint, "-o", tmp_path / "q.prior.pt", "--steps", "1")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "another model" in errors(r)[0]
    nospk = tmp_path / "nospk"
    nospk.mkdir()
    good = CodesFile.load(next(tiny_codes.rglob("*.vqc")))
    CodesFile(good.indices, good.codebook_size, good.fingerprint).save(nospk / "b.vqc")
    r = cli("train-prior", nospk, "-m", tiny_checkpoint, "-o", tmp_path / "q.prior.pt", "--steps", "1")
    assert r.exit_code == 1 and len(errors(r)) == 1 and "speaker" in errors(r)[0]
    assert not (tmp_path / "q.prior.pt").exists()


def test_help():
    for cmd in ("train-prior", "sample"):
        r = cli(cmd, "--help")
        assert r.exit_code == 0 and "Usage" in r.stdout
