"""`mel_cond_blocks`: the WaveNet conditioned on the log-mel that the code network's head predicts
(issue 14, arm D of the decoder A/B)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vqconvert.augment import true_mel_mask
from vqconvert.config import TrainConfig, preset
from vqconvert.errors import CheckpointError
from vqconvert.model import VQVAE


def _model(speakers: int = 3) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(preset("tiny-melcond", n_speakers=speakers))


def _audio(b: int = 2, frames: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (0.3 * torch.randn(b, 64 * frames, generator=g)).clamp(-1, 1)


def test_the_wavenet_reads_the_predicted_mel_and_its_loss_stops_there():
    m = _model().train()
    out = m(_audio(), torch.tensor([0, 2]))
    out.nll.backward()
    # The WaveNet's loss trains the network over the mel, not the mel head, code network or encoder.
    assert m.decoder.mel_cond_net.inp.weight.grad.abs().sum() > 0
    for part in (m.decoder.mel_head, m.decoder.cond_net, m.encoder):
        assert all(p.grad is None or not p.grad.any() for p in part.parameters())
    m.zero_grad()
    out = m(_audio(), torch.tensor([0, 2]))
    out.mel.backward()
    assert m.decoder.mel_head.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.any() for p in m.encoder.parameters())  # straight-through


def test_frame_features_follow_the_predicted_mel_within_the_stated_context():
    m = _model().eval()
    cfg = m.cfg
    assert cfg.cond_context == (1 + sum(cfg.cond_dilations)) + (1 + sum(cfg.mel_cond_dilations)) == 8
    codes = torch.randint(0, cfg.codebook_size, (1, 60), generator=torch.Generator().manual_seed(0))
    changed = codes.clone()
    changed[0, 30] = (changed[0, 30] + 1) % cfg.codebook_size
    with torch.no_grad():
        a, mel_a = m.decoder.conditioning(m.codes_to_latents(codes), torch.tensor([0]))
        b, _ = m.decoder.conditioning(m.codes_to_latents(changed), torch.tensor([0]))
        # Features are a function of the predicted mel (and speaker) only.
        again = m.decoder.mel_cond_net(
            (mel_a - (-5.0)) / 3.0, m.decoder.speaker(torch.tensor([0]))
        )
    assert torch.allclose(a, again, atol=1e-6)
    moved = ((a - b).abs().amax(1) > 0)[0].nonzero().squeeze(1)
    assert moved.numel() > 1 and int(moved.min()) >= 30 - cfg.cond_context and int(moved.max()) <= 30 + cfg.cond_context
    assert m.predict_mel(codes, torch.tensor([0])).shape == (1, cfg.mel_bins, 60)


@pytest.mark.parametrize("missing", [dict(cond_blocks=0), dict(mel_bins=0)])
def test_mel_conditioning_needs_the_code_network_and_the_head(missing):
    with pytest.raises(ValueError, match="mel_cond_blocks"):
        VQVAE(dataclasses.replace(preset("tiny-melcond"), **missing))


def test_older_presets_have_no_mel_conditioning_network():
    for name in ("tiny", "tiny-cond", "small-cond"):
        cfg = preset(name)
        assert cfg.mel_cond_blocks == 0
        assert not any(k.startswith("decoder.mel_cond_net") for k in VQVAE(cfg).state_dict())


def test_true_mel_crops_condition_on_the_audios_own_log_mel():
    m = _model().eval()
    audio, spk = _audio(), torch.tensor([0, 1])
    with torch.no_grad():
        pred = m(audio, spk)
        none = m(audio, spk, true_mel=torch.tensor([False, False]))
        true = m(audio, spk, true_mel=torch.tensor([True, False]))
    assert torch.equal(pred.nll, none.nll) and not torch.equal(pred.nll, true.nll)
    assert torch.equal(pred.mel, true.mel)  # the head's loss is on its prediction either way
    cfg = TrainConfig(true_mel=0.5, seed=3)
    masks = [true_mel_mask(cfg, 64, step) for step in range(4)]
    assert torch.equal(masks[1], true_mel_mask(cfg, 64, 1)) and not torch.equal(masks[0], masks[1])
    assert 0.3 < float(torch.stack(masks).float().mean()) < 0.7
    assert true_mel_mask(TrainConfig(), 4, 0) is None


def test_train_refuses_true_mel_without_mel_conditioning(tmp_path):
    from typer.testing import CliRunner

    from vqconvert.cli import app

    r = CliRunner().invoke(app, ["train", str(tmp_path), "--preset", "tiny-cond", "--true-mel", "0.5"])
    assert r.exit_code == 1 and "mel-conditioned preset" in r.output


def test_codes_from_copies_and_freezes_the_encoder_and_codebook(tmp_path):
    """A new decoder trained on another model's codes: same fingerprint, encoder/codebook unchanged by
    training, the decoder trained."""
    from test_train import cfg_for, toy_corpus

    from vqconvert.checkpoint import load_model
    from vqconvert.train import Trainer

    corpus = toy_corpus(tmp_path / "toy")
    Trainer(cfg_for(tmp_path / "src", corpus, preset="tiny", steps=2), progress=False).run()
    source = load_model(tmp_path / "src" / "run")
    cfg = cfg_for(tmp_path / "new", corpus, preset="tiny-melcond", steps=3, codes_from=str(tmp_path / "src" / "run"))
    Trainer(cfg, progress=False).run()
    new = load_model(cfg.run_dir)
    assert new.fingerprint == source.fingerprint
    assert torch.equal(new.model.quantizer.codebook, source.model.quantizer.codebook)
    fresh = VQVAE(dataclasses.replace(new.config))
    assert not torch.equal(new.model.decoder.head2.weight, fresh.decoder.head2.weight)
    for bad in (dict(preset="small"), dict(preset="tiny-melcond", ema=True)):
        with pytest.raises(CheckpointError, match="encoder differs"):
            Trainer(cfg_for(tmp_path / "bad", corpus, codes_from=str(tmp_path / "src" / "run"), **bad))
    with pytest.raises(CheckpointError, match="--codes-from"):
        Trainer(cfg_for(tmp_path / "bad2", corpus, preset="tiny-melcond", codes_from=str(tmp_path / "nothing.pt")))
