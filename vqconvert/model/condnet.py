"""Frame-rate conditioning network: code vectors and the speaker embedding -> the features every WaveNet
layer is conditioned on (and the auxiliary log-mel head reads).

A k3 convolution over [z_q; speaker] followed by residual blocks of dilated k3 convolutions (dilations
1, 2, 4, 8, ...). The context is bounded, +-(1 + sum of dilations) frames (+-64 ms with 4 blocks), so
a chunk of codes with that much context on each side gives exact features: streamed decoding still works.
"""

from __future__ import annotations

import torch
from torch import nn


class DilatedBlock(nn.Module):
    """x + W1 relu(conv_k3,d(relu(x)))."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation, padding=dilation)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(torch.relu(self.conv(torch.relu(x))))


class CondNet(nn.Module):
    """(B, D, F) code vectors, (B, S) speaker embeddings -> (B, C, F) non-negative frame features."""

    def __init__(self, latent_dim: int, speaker_dim: int, channels: int, dilations: list[int]) -> None:
        super().__init__()
        self.inp = nn.Conv1d(latent_dim + speaker_dim, channels, 3, padding=1)
        # The speaker's weights start at zero, as WaveNet.speaker_proj's (see there): random per-speaker
        # offsets would otherwise drown what the embedding learns.
        with torch.no_grad():
            self.inp.weight[:, latent_dim:].zero_()
        self.blocks = nn.ModuleList([DilatedBlock(channels, d) for d in dilations])

    def forward(self, z_q: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        s = spk.to(z_q.dtype)[:, :, None].expand(-1, -1, z_q.shape[2])
        x = self.inp(torch.cat([z_q, s], dim=1))
        for block in self.blocks:
            x = block(x)
        return torch.relu(x)
