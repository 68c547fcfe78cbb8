"""Issue 14's decoder additions: the frame-rate conditioning network, the log-mel head and its
Griffin-Lim preview, previous-sample noise, encoder-input augmentation and EMA weights."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch

from vqconvert.augment import augment_encoder_input, prev_noise_scales
from vqconvert.checkpoint import (
    READ_VERSIONS,
    build_model,
    export_checkpoint,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from vqconvert.config import TrainConfig, preset
from vqconvert.ema import WeightsEMA
from vqconvert.model import VQVAE
from vqconvert.model.mel import LogMel, mel_filterbank
from vqconvert.vocoder import griffin_lim


def _model(name: str = "tiny-cond", speakers: int = 3, seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    return VQVAE(preset(name, n_speakers=speakers))


def _tone(seconds: float = 0.5, f0: float = 440.0) -> torch.Tensor:
    t = torch.arange(int(seconds * 16000)) / 16000
    return (0.5 * torch.sin(2 * torch.pi * f0 * t)).float()


def test_cond_context_is_bounded_and_speaker_enters():
    m = _model().eval()
    with torch.no_grad():  # the speaker weights start at zero: give them some so the speaker matters
        m.decoder.cond_net.inp.weight.normal_()
    ctx = m.cfg.cond_context
    assert ctx == 1 + sum(m.cfg.cond_dilations) == 4  # tiny-cond: dilations 1, 2
    codes = torch.randint(0, m.cfg.codebook_size, (1, 40), generator=torch.Generator().manual_seed(0))
    changed = codes.clone()
    changed[0, 20] = (changed[0, 20] + 1) % m.cfg.codebook_size
    with torch.no_grad():
        a = m.decoder.frame_features(m.codes_to_latents(codes), torch.tensor([0]))
        b = m.decoder.frame_features(m.codes_to_latents(changed), torch.tensor([0]))
        c = m.decoder.frame_features(m.codes_to_latents(codes), torch.tensor([1]))
    moved = ((a - b).abs().amax(1) > 0)[0].nonzero().squeeze(1)
    assert int(moved.min()) >= 20 - ctx and int(moved.max()) <= 20 + ctx and moved.numel() > 1
    assert not torch.equal(a, c)


def test_paper_form_is_kept_for_old_configs():
    m = _model("tiny")
    assert hasattr(m.decoder, "cond_in") and not hasattr(m.decoder, "cond_net")
    assert not any(k.startswith(("decoder.cond_net", "decoder.mel_head")) for k in m.state_dict())


def test_mel_filterbank_matches_librosa_htk():
    ours = mel_filterbank(16000, 1024, 80).numpy()
    ref = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=80, htk=True, norm=None)
    assert np.allclose(ours, ref, atol=1e-5)


def test_log_mel_frames_follow_the_codes_and_peak_at_the_tone():
    a = _tone(0.5, 1000.0)[: 64 * 125]
    mel = LogMel(16000, 40, 64)(a[None])[0]
    assert mel.shape == (40, 125)
    fb = mel_filterbank(16000, 1024, 40)
    centre = int(torch.argmax(fb[:, int(1000 / 8000 * 512)]))
    assert int(mel[:, 60].argmax()) == centre


def test_griffin_lim_preview_keeps_the_pitch():
    a = _tone(0.5, 440.0)[: 64 * 125]
    y = griffin_lim(LogMel(16000, 80, 64)(a[None])[0], 16000, 64, n_iter=8)
    assert y.shape == (64 * 125,) and np.isfinite(y).all()
    spec = np.abs(np.fft.rfft(y[2000:6000] * np.hanning(4000)))
    assert abs(np.argmax(spec) * 16000 / 4000 - 440.0) < 30.0


def test_fast_griffin_lim_option_keeps_the_pitch_and_changes_the_phase():
    """momentum > 0 (fast Griffin-Lim, measured worse on predicted log-mels: model card) is a real variant."""
    a = _tone(0.5, 440.0)[: 64 * 125]
    target = LogMel(16000, 80, 64)(a[None])[0]
    plain, fast = (griffin_lim(target, 16000, 64, n_iter=8, momentum=m) for m in (0.0, 0.99))
    assert fast.shape == plain.shape and np.isfinite(fast).all() and not np.allclose(fast, plain)
    spec = np.abs(np.fft.rfft(fast[2000:6000] * np.hanning(4000)))
    assert abs(np.argmax(spec) * 16000 / 4000 - 440.0) < 30.0


def test_mel_head_learns_and_its_loss_is_in_the_objective():
    m = _model(speakers=1).train()
    audio = _tone(0.25)[: 64 * 62][None].repeat(2, 1)
    spk = torch.tensor([0, 0])
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    first = None
    for _ in range(30):
        out = m(audio, spk)
        assert out.mel is not None
        assert torch.allclose(out.loss, out.nll + out.codebook + out.commitment + m.cfg.mel_weight * out.mel)
        first = float(out.mel.detach()) if first is None else first
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert float(out.mel.detach()) < 0.7 * first
    assert m.predict_mel(m.encode(audio), spk).shape == (2, m.cfg.mel_bins, 62)


def test_prev_noise_changes_the_input_not_the_target():
    m = _model().eval()
    audio = _tone(0.1)[: 64 * 25][None]
    spk = torch.tensor([0])
    clean = m(audio, spk)
    torch.manual_seed(1)
    zero = m(audio, spk, prev_noise=torch.zeros(1))
    noisy = m(audio, spk, prev_noise=torch.tensor([8.0]))
    assert torch.equal(clean.nll, zero.nll) and not torch.equal(clean.nll, noisy.nll)


def test_encoder_augmentation_is_reproducible_and_does_what_it_says():
    audio = _tone(0.1)[None].repeat(3, 1)
    shift_only = TrainConfig(enc_shift=16)
    a = augment_encoder_input(audio, shift_only, step=5)
    assert torch.equal(a, augment_encoder_input(audio, shift_only, step=5))
    assert not torch.equal(a, augment_encoder_input(audio, shift_only, step=6))
    for row in a:  # each row is the tone moved by at most 16 samples
        assert min(float((row[40:-40] - torch.roll(audio[0], k)[40:-40]).abs().max()) for k in range(-16, 17)) < 1e-6
    gain = augment_encoder_input(audio, TrainConfig(enc_gain_db=6.0), step=0)
    ratio = gain.abs().amax(1) / audio.abs().amax(1)
    assert ((ratio > 10 ** (-6 / 20) - 1e-4) & (ratio < 10 ** (6 / 20) + 1e-4)).all()
    noisy = augment_encoder_input(audio, TrainConfig(enc_noise_snr=20.0), step=0)
    snr = 10 * torch.log10(audio.pow(2).mean(1) / (noisy - audio).pow(2).mean(1))
    assert ((snr > 19.0) & (snr < 51.0)).all()
    assert prev_noise_scales(TrainConfig(), 3, 0) is None
    s = prev_noise_scales(TrainConfig(prev_noise=4.0), 3, 0)
    assert s.shape == (3,) and (s >= 0).all() and (s <= 4).all()


def test_weights_ema_follows_and_roundtrips():
    m = _model()
    ema = WeightsEMA(m, 0.9)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    for _ in range(50):
        ema.update(m)
    p0, s0 = next(m.parameters()), next(ema.shadow.parameters())
    assert torch.allclose(s0, p0, atol=1e-2)
    again = WeightsEMA(_model(seed=1), 0.9)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 50 and torch.equal(next(again.shadow.parameters()), s0)
    with pytest.raises(ValueError):
        WeightsEMA(m, 1.0)


def test_ema_weights_are_used_for_inference_and_export_raw_for_resume(tmp_path):
    m = _model()
    ema = WeightsEMA(m, 0.5)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    path = tmp_path / "run" / "latest.pt"
    save_checkpoint(path, m, ["a", "b", "c"], step=3, ema=ema.state_dict())
    ckpt = load_checkpoint(path)
    raw, inf = build_model(ckpt, use_ema=False), load_model(path).model
    key = "decoder.head2.bias"
    assert torch.equal(raw.state_dict()[key], m.state_dict()[key])
    assert torch.equal(inf.state_dict()[key], ema.shadow.state_dict()[key])
    _, exported = export_checkpoint(path, tmp_path / "out.pt", half=False)
    assert torch.equal(load_model(tmp_path / "out.pt").model.state_dict()[key], ema.shadow.state_dict()[key])
    assert "ema" not in load_checkpoint(tmp_path / "out.pt")
    with pytest.raises(Exception, match="already exists"):
        export_checkpoint(path, tmp_path / "out.pt")


def test_format_version_1_checkpoints_still_load(tmp_path):
    m = _model("tiny")
    path = tmp_path / "v1.pt"
    save_checkpoint(path, m, ["a", "b", "c"], step=7)
    ckpt = torch.load(path, weights_only=True)
    ckpt["version"] = 1
    torch.save(ckpt, path)
    assert 1 in READ_VERSIONS
    loaded = load_model(path)
    assert loaded.step == 7 and loaded.config == dataclasses.replace(m.cfg)


def test_griffin_lim_vocoder_in_decode_and_transfer(tmp_path, make_wav, tiny_checkpoint):
    from typer.testing import CliRunner

    from vqconvert.audio import load_audio
    from vqconvert.cli import app

    model = tmp_path / "cond.pt"
    save_checkpoint(model, _model(), ["spk-a", "spk-b", "spk-c"], step=1)
    wav = make_wav("in.wav", seconds=0.5)
    runner = CliRunner()
    out = tmp_path / "out.wav"
    args = ["transfer", str(wav), "-m", str(model), "--speaker", "spk-b", "--vocoder", "griffin-lim", "-o", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert load_audio(out).shape[0] == load_audio(wav).shape[0]
    codes = tmp_path / "in.vqc"
    assert runner.invoke(app, ["encode", str(wav), "-m", str(model), "-o", str(codes)]).exit_code == 0
    dec = tmp_path / "decoded.wav"
    res = runner.invoke(
        app, ["decode", str(codes), "-m", str(model), "-s", "spk-a", "--vocoder", "griffin-lim", "-o", str(dec)]
    )
    assert res.exit_code == 0, res.output
    assert load_audio(dec).shape[0] == load_audio(wav).shape[0]
    # a model without a mel head: one line, exit 1, nothing written; an unknown vocoder: exit 2
    res = runner.invoke(
        app,
        [
            "transfer",
            str(wav),
            "-m",
            str(tiny_checkpoint),
            "--speaker",
            "spk-b",
            "--vocoder",
            "griffin-lim",
            "-o",
            str(tmp_path / "x.wav"),
        ],
    )
    assert res.exit_code == 1 and "no mel head" in res.output and not (tmp_path / "x.wav").exists()
    res = runner.invoke(app, ["transfer", str(wav), "-m", str(model), "--speaker", "spk-b", "--vocoder", "nope"])
    assert res.exit_code == 2
