"""mu-law companding of the decoder's 256-way output, and SILENCE, the index of 0.0 that stands for the
"previous sample" before the first one. Pure torch: the model package loads no audio libraries."""

from __future__ import annotations

import math

import torch

from vqconvert.config import MU_CLASSES

SILENCE = MU_CLASSES // 2  # mu-law index of 0.0 (128 of 256)


def mu_law_encode(x: torch.Tensor, classes: int = MU_CLASSES) -> torch.Tensor:
    """Float audio in [-1, 1] (any shape) -> LongTensor of the same shape in [0, classes - 1]."""
    mu = classes - 1
    x = x.clamp(-1.0, 1.0).to(torch.float32)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.round((y + 1.0) * (mu / 2.0)).clamp(0, mu).long()


def mu_law_decode(idx: torch.Tensor, classes: int = MU_CLASSES) -> torch.Tensor:
    """Integer classes (any shape) -> float32 audio of the same shape in [-1, 1]."""
    mu = classes - 1
    y = idx.to(torch.float32) * (2.0 / mu) - 1.0
    return torch.sign(y) * (torch.pow(1.0 + mu, y.abs()) - 1.0) / mu
