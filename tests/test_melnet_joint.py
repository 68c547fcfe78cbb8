"""Tuning the encoder with the mel net's loss (vqconvert.melnet.joint)."""

from __future__ import annotations

import numpy as np
import torch

from vqconvert.checkpoint import fingerprint
from vqconvert.config import HOP, preset
from vqconvert.melnet.joint import AudioUtt, TuneConfig, fold, tune_encoder
from vqconvert.melnet.model import CodeMelNet, MelNetConfig
from vqconvert.melnet.train import encode_once as encode
from vqconvert.model import VQVAE
from vqconvert.model.mel import LogMel


class _Cache:
    """The two calls tune_encoder makes of an audio cache, over in-memory clips."""

    def __init__(self, clips: list[np.ndarray]) -> None:
        self.clips = clips

    def audio(self, i: int) -> np.ndarray:
        return self.clips[i]

    def crop(self, i: int, start: int, length: int) -> np.ndarray:
        out = np.zeros(length, np.float32)
        part = self.clips[i][start : start + length]
        out[: part.size] = part
        return out


def _setup(n: int = 6):
    torch.manual_seed(0)
    model = VQVAE(preset("tiny"))
    rng = np.random.default_rng(0)
    t = np.arange(HOP * 48) / 16000
    clips = [
        (0.3 * np.sin(2 * np.pi * (120 + 40 * k) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        for k in range(n)
    ]
    # the codebook from data, as a trained model's would be
    model.train()
    model.quantizer(model.encoder(torch.from_numpy(np.stack(clips))))
    model.eval()
    log_mel = LogMel(16000, 8, HOP)
    utts = [AudioUtt(k, log_mel(torch.from_numpy(c)[None])[0].half(), k % 2, f"u{k}") for k, c in enumerate(clips)]
    net = CodeMelNet(MelNetConfig(codebook_size=model.cfg.codebook_size, n_speakers=2, n_mels=8, channels=8, context=3))
    net.learnt[:] = True
    return model, net, _Cache(clips), utts


def test_fold_puts_the_projection_into_the_index_embedding():
    model, net, _cache, _utts = _setup(1)
    proj = torch.nn.Linear(model.quantizer.dim, net.cfg.channels)
    codebook = model.quantizer.codebook.detach()
    idx = torch.randint(0, model.cfg.codebook_size, (2, 20))
    spk = torch.tensor([0, 1])
    with torch.no_grad():
        want = net.from_embedded(net.code(idx) + proj(codebook[idx]), spk)
        got = fold(net, proj, codebook)(idx, spk)
    assert torch.allclose(got, want, atol=1e-5)


def test_frozen_encoder_keeps_the_codes_and_trains_the_net():
    model, net, cache, utts = _setup()
    before, codes, restart = fingerprint(model), encode(model, cache.audio(0)), model.quantizer.dead_code_steps
    weights = net.out.weight.detach().clone()
    cfg = TuneConfig(steps=4, batch_size=2, crop_frames=16, warmup_steps=1, validate_every=2, freeze_encoder=True)
    model, out, metrics = tune_encoder(model, net, cache, utts[:4], utts[4:], cfg)
    assert fingerprint(model) == before and torch.equal(encode(model, cache.audio(0)), codes)
    assert metrics["codes_changed"] == 0.0 and not torch.equal(out.out.weight, weights)
    assert [r["step"] for r in metrics["history"]] == [2, 4]
    assert model.quantizer.dead_code_steps == restart > 0  # restored


def test_joint_tuning_moves_the_encoder_and_starts_from_the_given_pair():
    model, net, cache, utts = _setup()
    before = fingerprint(model)
    cfg = TuneConfig(
        steps=6, batch_size=2, crop_frames=16, warmup_steps=1, lr=1e-2, encoder_lr_ratio=1.0, validate_every=0
    )
    model, out, metrics = tune_encoder(model, net, cache, utts[:4], utts[4:], cfg)
    assert fingerprint(model) != before
    assert metrics["steps"] == 6 and 0.0 <= metrics["codes_changed"] <= 1.0
    assert isinstance(out, CodeMelNet) and not out.training and not model.training
    assert all(p.requires_grad for p in model.parameters())
    # step 0 is the given pair: with zero steps nothing moves
    model2, net2, cache2, utts2 = _setup()
    before2 = fingerprint(model2)
    ref = net2.code.weight.detach().clone()
    model2, out2, m2 = tune_encoder(model2, net2, cache2, utts2[:4], utts2[4:], TuneConfig(steps=0))
    assert fingerprint(model2) == before2 and torch.equal(out2.code.weight, ref) and m2["codes_changed"] == 0.0
