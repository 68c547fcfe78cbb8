"""CodeMelNet: a VQ-VAE's code indices and a speaker -> the 80-bin log-mel (vqconvert.model.mel.LogMel's)
at the code rate, non-autoregressive. Code and speaker embeddings are summed and run through residual
blocks of dilated k3 convolutions (vqconvert.model.condnet.DilatedBlock): context +-(sum of dilations)
frames. Trained after the VQ-VAE on its frozen codes (vqconvert.melnet.train) with an L1 loss, it is what
`--vocoder griffin-lim` renders when a model ships one. No I/O here: vqconvert.melnet.store saves it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from vqconvert.config import strict_from_dict
from vqconvert.model.condnet import DilatedBlock


@dataclass(frozen=True)
class MelNetConfig:
    codebook_size: int = 512  # K of the VQ-VAE whose codes it reads
    n_speakers: int = 1  # the VQ-VAE's speaker table (indices are shared with it)
    n_mels: int = 80
    channels: int = 128
    context: int = 127  # frames each side: dilations 1, 2, 4, ... summing to it (2^n - 1)
    stacks: int = 1  # the dilation cycle repeated this many times

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MelNetConfig:
        return strict_from_dict(cls, d, "mel net")

    def dilations(self) -> list[int]:
        n = (self.context + 1).bit_length() - 1
        if self.context < 1 or 2**n - 1 != self.context:
            raise ValueError(f"mel net context must be 2^n - 1 frames (7, 15, 31, 63, 127, ...), got {self.context}")
        return [2**k for k in range(n)] * self.stacks


MELNET_PRESETS: dict[str, MelNetConfig] = {
    "tiny": MelNetConfig(channels=16, context=7),
    "small": MelNetConfig(),
    "large": MelNetConfig(channels=192, stacks=2),
}


class CodeMelNet(nn.Module):
    """(B, F) code indices, (B,) speaker indices -> (B, n_mels, F) log-mel."""

    def __init__(self, cfg: MelNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.code = nn.Embedding(cfg.codebook_size, cfg.channels)
        self.speaker = nn.Embedding(max(cfg.n_speakers, 1), cfg.channels)
        self.blocks = nn.ModuleList([DilatedBlock(cfg.channels, d) for d in cfg.dilations()])
        self.out = nn.Conv1d(cfg.channels, cfg.n_mels, 1)
        # which speakers' embeddings were trained (the table is the VQ-VAE's; some may have had no audio)
        self.register_buffer("learnt", torch.zeros(max(cfg.n_speakers, 1), dtype=torch.bool))

    def init_bias(self, mean_log_mel: torch.Tensor) -> None:
        """Start the output at the data's mean log-mel `(n_mels,)`, so early steps learn shape, not level."""
        with torch.no_grad():
            self.out.bias.copy_(mean_log_mel.to(self.out.bias))

    def forward(self, codes: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        return self.from_embedded(self.code(codes), speaker)

    def from_embedded(self, emb: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """(B, F, C) code embeddings (what `self.code` gives, or anything in its place), (B,) speakers ->
        (B, n_mels, F) log-mel."""
        x = (emb + self.speaker(speaker)[:, None]).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.out(torch.relu(x))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
