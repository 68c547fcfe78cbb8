"""An exponential moving average of a model's weights, for validation, probing and export."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightsEMA:
    """Keeps `shadow`, a copy of `model` whose floating parameters follow
    shadow = decay * shadow + (1 - decay) * current after every `update`; buffers (codebook usage,
    quantizer state) are copied as they are. Early on the decay is min(decay, (1 + n) / (10 + n)) so the
    average does not drag the random init along."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for s, p in zip(self.shadow.parameters(), model.parameters(), strict=True):
            s.lerp_(p.detach().to(s.dtype), 1.0 - d)
        for s, b in zip(self.shadow.buffers(), model.buffers(), strict=True):
            s.copy_(b)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "model": self.shadow.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.shadow.load_state_dict(state["model"], strict=True)
