"""Training-time robustness: what the encoder hears (shift, gain, noise) and how noisy the decoder's
previous-sample input is. Every draw is a pure function of (seed, step, rank), like the crops, so a
resumed run sees the same augmentations."""

from __future__ import annotations

import numpy as np
import torch

from vqconvert.audio import pitch_shift
from vqconvert.config import TrainConfig


def _rng(cfg: TrainConfig, step: int, rank: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, step, rank, stream])


def encoder_augmentation_on(cfg: TrainConfig) -> bool:
    return cfg.enc_shift > 0 or cfg.enc_gain_db > 0 or cfg.enc_noise_snr > 0


def pitch_perturbed(
    audio: torch.Tensor, cfg: TrainConfig, step: int, rank: int, sample_rate: int
) -> torch.Tensor | None:
    """(B, T) -> (B, T) each row pitch-shifted by U(-p, p) semitones (p = cfg.perturb_semitones), or None
    when p is 0: the codes then cannot carry a speaker's pitch."""
    p = cfg.perturb_semitones
    if p <= 0:
        return None
    rng = _rng(cfg, step, rank, 7)
    rows = [pitch_shift(a, float(rng.uniform(-p, p)), sample_rate) for a in audio.cpu().numpy()]
    return torch.from_numpy(np.stack(rows)).to(audio.device)


def encoder_input(audio: torch.Tensor, cfg: TrainConfig, step: int, rank: int, sample_rate: int) -> torch.Tensor | None:
    """What the encoder hears: the pitch-shifted and augmented copy `cfg` asks for (None = `audio` itself)."""
    enc_in = pitch_perturbed(audio, cfg, step, rank, sample_rate)
    if encoder_augmentation_on(cfg):
        enc_in = augment_encoder_input(audio if enc_in is None else enc_in, cfg, step, rank)
    return enc_in


def augment_encoder_input(audio: torch.Tensor, cfg: TrainConfig, step: int, rank: int = 0) -> torch.Tensor:
    """(B, T) -> (B, T): each row shifted by U{-s..s} samples (zeros enter at the edge), scaled by
    U(-g, g) dB and given white noise at an SNR of U(snr, snr + 30) dB, as `cfg` asks."""
    rng = _rng(cfg, step, rank, 11)
    b, t = audio.shape
    out = audio.clone()
    if cfg.enc_shift > 0:
        for i, k in enumerate(rng.integers(-cfg.enc_shift, cfg.enc_shift + 1, size=b)):
            k = int(k)
            if k > 0:
                out[i, k:], out[i, :k] = audio[i, : t - k], 0.0
            elif k < 0:
                out[i, :k], out[i, k:] = audio[i, -k:], 0.0
    if cfg.enc_gain_db > 0:
        db = rng.uniform(-cfg.enc_gain_db, cfg.enc_gain_db, size=b)
        out = out * torch.as_tensor(10.0 ** (db / 20.0), dtype=out.dtype, device=out.device)[:, None]
    if cfg.enc_noise_snr > 0:
        snr = rng.uniform(cfg.enc_noise_snr, cfg.enc_noise_snr + 30.0, size=b)
        rms = out.pow(2).mean(1).sqrt().clamp_min(1e-4)
        scale = rms * torch.as_tensor(10.0 ** (-snr / 20.0), dtype=out.dtype, device=out.device)
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        noise = torch.randn(b, t, generator=g).to(out.device, out.dtype)
        out = out + noise * scale[:, None]
    return out.clamp_(-1.0, 1.0)


def prev_noise_scales(cfg: TrainConfig, batch: int, step: int, rank: int = 0) -> torch.Tensor | None:
    """(B,) std of the previous-sample noise, in mu-law index units, U(0, cfg.prev_noise) per crop; None
    when off. Crops with little noise keep the decoder good at clean input; noisy ones teach it to
    lean on the codes."""
    if cfg.prev_noise <= 0:
        return None
    rng = _rng(cfg, step, rank, 13)
    return torch.as_tensor(rng.uniform(0.0, cfg.prev_noise, size=batch), dtype=torch.float32)


def true_mel_mask(cfg: TrainConfig, batch: int, step: int, rank: int = 0) -> torch.Tensor | None:
    """(B,) bool: the crops whose mel-conditioned WaveNet reads the true log-mel (probability
    cfg.true_mel each); None when off. Like a vocoder's training, it sees sharp log-mels to learn from."""
    if cfg.true_mel <= 0:
        return None
    rng = _rng(cfg, step, rank, 17)
    return torch.as_tensor(rng.random(batch) < cfg.true_mel)
