"""Model unit tests: shapes, quantizer semantics, gradient paths, every preset trains a step."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vqconvert.config import PRESETS, ModelConfig, preset
from vqconvert.model import VQVAE
from vqconvert.model.quantizer import VectorQuantizer, kmeans_pp


def _audio(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, t, generator=g) * 2 - 1) * 0.5


def test_encoder_downsamples_64x():
    m = VQVAE(preset("tiny", n_speakers=2))
    for frames in (1, 3, 17):
        assert m.encoder(_audio(2, 64 * frames)).shape == (2, m.cfg.latent_dim, frames)
        assert m.encode(_audio(2, 64 * frames)).shape == (2, frames)


def test_quantizer_output_is_codebook_lookup_of_its_indices():
    q = VectorQuantizer(16, 8, dead_code_steps=0).eval()
    z = torch.randn(3, 8, 11)
    out = q(z)
    assert torch.allclose(out.z_q, q.lookup(out.indices), atol=1e-6)
    # nearest really is nearest
    flat = z.transpose(1, 2).reshape(-1, 8)
    brute = torch.cdist(flat, q.codebook.detach()).argmin(1)
    assert torch.equal(out.indices.flatten(), brute)


def test_quantizer_perplexity_is_the_package_definition():
    from vqconvert.stats import code_counts, perplexity

    q = VectorQuantizer(16, 8, dead_code_steps=0).eval()
    out = q(torch.randn(3, 8, 11))
    assert out.perplexity.dtype == torch.float32 and int(out.used) == len(torch.unique(out.indices))
    assert float(out.perplexity) == pytest.approx(perplexity(code_counts([out.indices], 16)), rel=1e-6)


def test_straight_through_and_codebook_gradient_paths():
    m = VQVAE(preset("tiny", n_speakers=2)).train()
    a, s = _audio(2, 256), torch.tensor([0, 1])
    # reconstruction loss reaches the encoder through the straight-through path, not the codebook
    out = m(a, s)
    out.nll.backward()
    assert m.encoder.down[0].weight.grad.abs().sum() > 0
    assert m.quantizer.codebook.grad is None or m.quantizer.codebook.grad.abs().sum() == 0
    m.zero_grad(set_to_none=True)
    # the codebook loss moves only the codebook
    out = m(a, s)
    out.codebook.backward()
    assert m.quantizer.codebook.grad.abs().sum() > 0
    assert m.encoder.down[0].weight.grad is None or m.encoder.down[0].weight.grad.abs().sum() == 0
    m.zero_grad(set_to_none=True)
    # the commitment loss moves only the encoder
    out = m(a, s)
    out.commitment.backward()
    assert m.encoder.down[0].weight.grad.abs().sum() > 0
    assert m.quantizer.codebook.grad is None or m.quantizer.codebook.grad.abs().sum() == 0


def test_dead_codes_are_reseeded_from_encoder_outputs():
    q = VectorQuantizer(8, 4, dead_code_steps=2).train()
    z = torch.randn(1, 4, 50) + 100.0  # far from the initial codebook
    q(z)  # k-means++ init from data
    q.codebook.data[3] = -1e3  # a code nobody will pick
    for _ in range(3):
        q(z)
    assert q.codebook[3].mean() > 50  # re-seeded near the data


def test_kmeans_pp_spreads_centres():
    x = torch.cat([torch.randn(100, 2) * 0.01 + c for c in (0.0, 10.0, 20.0)])
    centres = kmeans_pp(x, 3, torch.Generator().manual_seed(0))
    assert sorted(round(float(c.mean())) for c in centres) == [0, 10, 20]


def test_ema_codebook_moves_without_gradients():
    m = VQVAE(preset("tiny", n_speakers=1, ema=True)).train()
    before = m.quantizer.codebook.clone()
    out = m(_audio(2, 256), torch.tensor([0, 0]))
    assert float(out.codebook) == 0.0
    assert not torch.equal(before, m.quantizer.codebook)


@pytest.mark.parametrize("name", list(PRESETS))
def test_one_training_step_is_finite_for_every_preset(name):
    m = VQVAE(preset(name, n_speakers=3)).train()
    opt = torch.optim.AdamW(m.parameters(), 1e-4)
    t = 64 * (8 if name.startswith("paper") else 16)
    out = m(_audio(2, t), torch.tensor([0, 2]))
    for term in (out.loss, out.nll, out.codebook, out.commitment, out.perplexity):
        assert torch.isfinite(term)
    out.loss.backward()
    opt.step()
    assert all(torch.isfinite(p).all() for p in m.parameters())


def test_decoder_is_causal():
    m = VQVAE(preset("tiny", n_speakers=1)).eval()
    a = _audio(1, 512)
    codes = m.encode(a)
    base = m.decode_logits(codes, torch.tensor([0]), a)
    b = a.clone()
    b[0, 300:] = -b[0, 300:]
    changed = m.decode_logits(codes, torch.tensor([0]), b)
    # logits at t depend on samples < t only: up to and including t=300 nothing changes
    assert torch.allclose(base[..., :301], changed[..., :301], atol=1e-5)
    assert not torch.allclose(base[..., 301:], changed[..., 301:])


def test_speaker_projection_starts_at_zero_then_learns_to_separate_speakers():
    torch.manual_seed(0)
    m = VQVAE(preset("tiny", n_speakers=2))
    a = _audio(2, 256)
    codes = m.encode(a)
    # No random per-speaker biases at init (they drowned the speaker signal in the first shipped run).
    c0 = codes[:1]
    assert torch.equal(m.decode_logits(c0, torch.tensor([0]), a[:1]), m.decode_logits(c0, torch.tensor([1]), a[:1]))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        m(a, torch.tensor([0, 1])).loss.backward()
        opt.step()
    m.eval()
    l0 = m.decode_logits(codes[:1], torch.tensor([0]), a[:1])
    l1 = m.decode_logits(codes[:1], torch.tensor([1]), a[:1])
    assert m.decoder.speaker_proj.weight.abs().sum() > 0
    assert not torch.allclose(l0, l1)


def test_transposed_upsampling_shapes():
    cfg = dataclasses.replace(PRESETS["tiny"], upsample="transposed", n_speakers=2)
    m = VQVAE(cfg)
    out = m(_audio(2, 64 * 5), torch.tensor([0, 1]))
    assert torch.isfinite(out.loss)


def test_config_roundtrip_and_unknown_preset():
    cfg = preset("small", n_speakers=7)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    assert PRESETS["paper"].codebook_size == 512 and PRESETS["paper"].hop == 64
