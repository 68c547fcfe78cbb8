"""Griffin-Lim rendering of the model's log-mel head: a fast preview of what the codes say (no WaveNet),
and a cheap intelligibility proxy during training."""

from __future__ import annotations

import numpy as np
import torch

from vqconvert.model.mel import N_FFT, mel_filterbank

GL_ITERS = 32
VOCODERS = ("wavenet", "griffin-lim")


def griffin_lim(
    log_mel: torch.Tensor | np.ndarray, sample_rate: int, hop: int, n_iter: int = GL_ITERS, seed: int = 0
) -> np.ndarray:
    """(n_mels, F) log mel magnitudes (vqconvert.model.mel.LogMel's) -> (F * hop,) float32 waveform.

    The mel magnitudes go back to a linear spectrogram through the filterbank's pseudo-inverse (clipped
    at 0), then Griffin-Lim finds a phase for it."""
    import librosa

    m = np.exp(np.asarray(torch.as_tensor(log_mel).detach().float().cpu(), dtype=np.float64))
    fb = mel_filterbank(sample_rate, N_FFT, m.shape[0]).double().numpy()
    spec = np.maximum(0.0, np.linalg.pinv(fb) @ m)
    frames = m.shape[1]
    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(spec.shape))
    # librosa's griffinlim draws its initial phase from the global numpy RNG unless given `init=None`
    # with a fixed start: start from our own seeded phase, so previews are reproducible.
    stft = spec * angles
    y = librosa.istft(stft, hop_length=hop, n_fft=N_FFT, length=frames * hop)
    for _ in range(n_iter):
        rebuilt = librosa.stft(y, n_fft=N_FFT, hop_length=hop, center=True)[:, :frames]
        stft = spec * np.exp(1j * np.angle(rebuilt))
        y = librosa.istft(stft, hop_length=hop, n_fft=N_FFT, length=frames * hop)
    y = np.asarray(y, np.float32)
    peak = float(np.abs(y).max()) if y.size else 0.0
    return y / peak * 0.9 if peak > 0.9 else y


def render_codes(model, codes: torch.Tensor, speaker: int, n_iter: int = GL_ITERS) -> np.ndarray:
    """(F,) code indices -> waveform by Griffin-Lim from the model's mel head, in `speaker`'s voice."""
    dev = next(model.parameters()).device
    mel = model.predict_mel(codes.reshape(1, -1).to(dev), torch.tensor([int(speaker)], device=dev))[0]
    return griffin_lim(mel, model.cfg.sample_rate, model.cfg.hop, n_iter=n_iter)


def griffin_lim_stream(model, codes: list[torch.Tensor], speakers: list[int]):
    """Like `vqconvert.generate.generate_stream`, but by Griffin-Lim from the mel head: yields once, per
    utterance its whole (F_i * hop,) waveform."""
    if model.cfg.mel_bins <= 0:
        raise ValueError("this model has no mel head: it cannot be rendered with Griffin-Lim")
    yield [torch.from_numpy(render_codes(model, c, s)) for c, s in zip(codes, speakers, strict=True)]
