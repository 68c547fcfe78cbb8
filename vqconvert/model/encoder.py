"""Encoder: 6 strided convolutions (stride 2, window 4) -> 64x downsampling, then residual blocks."""

from __future__ import annotations

import torch
from torch import nn

N_DOWN = 6


class ResBlock(nn.Module):
    """ReLU, 3x3 conv, ReLU, 1x1 conv, added to the input (the paper's residual block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv3 = nn.Conv1d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv3(torch.relu(x))))


class Encoder(nn.Module):
    """(B, T) waveform in [-1, 1] -> (B, D, T/64) continuous latents z_e. T must be a multiple of 64."""

    def __init__(self, hidden: int, latent_dim: int, res_blocks: int) -> None:
        super().__init__()
        convs = [nn.Conv1d(1 if i == 0 else hidden, hidden, 4, stride=2, padding=1) for i in range(N_DOWN)]
        self.down = nn.ModuleList(convs)
        self.res = nn.Sequential(*[ResBlock(hidden) for _ in range(res_blocks)])
        self.out = nn.Conv1d(hidden, latent_dim, 1)
        # He init keeps the variation of the latents over time at the scale of the input; PyTorch's
        # default shrinks it ~100x over these layers, so every frame lands on the same code.
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio.unsqueeze(1)
        for i, conv in enumerate(self.down):
            x = conv(x)
            if i < N_DOWN - 1:
                x = torch.relu(x)
        x = torch.relu(self.res(x))
        return self.out(x)
