"""Log-mel spectrogram at the code rate (hop 64), in torch: the target of the auxiliary mel head.

HTK mel scale, triangular filters without area normalisation, magnitude (not power) spectrum, so that
`librosa.filters.mel(sr=16000, n_fft=1024, n_mels=M, htk=True, norm=None)` gives the same filterbank
and a Griffin-Lim vocoder can invert it (`vqconvert.vocoder`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

N_FFT = 1024
FLOOR = 1e-5  # log floor: -11.5 in log units
# A fixed affine map of log-mel values (about -11.5 .. 4) to roughly unit scale, for networks that read them.
NORM_CENTER, NORM_SCALE = -5.0, 3.0


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters spanning 0 .. sample_rate / 2 on the HTK mel scale."""
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    top = hz_to_mel(torch.tensor(sample_rate / 2.0, dtype=torch.float64))
    edges = mel_to_hz(torch.linspace(0.0, float(top), n_mels + 2, dtype=torch.float64))
    lower = (freqs[None] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - freqs[None]) / (edges[2:] - edges[1:-1])[:, None]
    return torch.clamp(torch.minimum(lower, upper), min=0.0).float()


class LogMel(nn.Module):
    """(B, T) waveform, T a multiple of `hop` -> (B, n_mels, T / hop) log mel magnitudes; frame f is
    centred on sample f * hop."""

    def __init__(self, sample_rate: int, n_mels: int, hop: int, n_fft: int = N_FFT) -> None:
        super().__init__()
        self.hop, self.n_fft = hop, n_fft
        # Not in the state dict: rebuilt from the config, so checkpoints stay plain weights.
        self.register_buffer("fb", mel_filterbank(sample_rate, n_fft, n_mels), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            audio.float(), self.n_fft, self.hop, window=self.window, center=True, pad_mode="constant",
            return_complex=True,
        ).abs()
        frames = audio.shape[-1] // self.hop
        return torch.log(torch.clamp(self.fb @ spec[..., :frames], min=FLOOR))


def normalise(log_mel: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, F) log-mel -> the same scaled to roughly zero mean, unit spread."""
    return (log_mel - NORM_CENTER) / NORM_SCALE


def log_floor() -> float:
    return math.log(FLOOR)
