"""VQVAE: encoder -> vector quantizer -> WaveNet decoder conditioned on codes and speaker."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqconvert.audio import mu_law_encode
from vqconvert.config import ModelConfig
from vqconvert.model.encoder import Encoder
from vqconvert.model.quantizer import VectorQuantizer
from vqconvert.model.wavenet import WaveNet

SILENCE = 128  # mu-law index of 0.0: the "previous sample" before the first one


@dataclass
class LossOutput:
    loss: torch.Tensor  # what is minimised: nll + codebook + commitment
    nll: torch.Tensor  # teacher-forced cross-entropy, nats per sample
    codebook: torch.Tensor
    commitment: torch.Tensor
    perplexity: torch.Tensor
    used: torch.Tensor

    @property
    def bits(self) -> float:
        return float(self.nll.detach()) / math.log(2)


def previous_samples(target: torch.Tensor) -> torch.Tensor:
    """(B, T) mu-law targets -> (B, T) the sample before each one (SILENCE before the first)."""
    return F.pad(target[:, :-1], (1, 0), value=SILENCE)


class VQVAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.enc_hidden, cfg.latent_dim, cfg.enc_res_blocks)
        self.quantizer = VectorQuantizer(
            cfg.codebook_size, cfg.latent_dim, cfg.beta, cfg.ema, cfg.ema_decay, cfg.dead_code_steps
        )
        self.decoder = WaveNet(cfg)

    def forward(
        self, audio: torch.Tensor, speaker: torch.Tensor, encoder_input: torch.Tensor | None = None
    ) -> LossOutput:
        """audio (B, T) in [-1, 1] with T a multiple of 64, speaker (B,) -> loss terms. `encoder_input`
        (B, T), if given, is what the encoder sees instead of `audio` (a perturbed copy of it)."""
        q = self.quantizer(self.encoder(audio if encoder_input is None else encoder_input))
        target = mu_law_encode(audio, self.cfg.mu_classes)
        logits = self.decoder(previous_samples(target), q.z_q, speaker)
        nll = F.cross_entropy(logits.float(), target)
        loss = nll + q.codebook_loss + q.commitment_loss
        return LossOutput(loss, nll, q.codebook_loss, q.commitment_loss, q.perplexity, q.used)

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) waveform, T a multiple of 64 -> (B, T/64) code indices."""
        z_e = self.encoder(audio)
        b, d, f = z_e.shape
        return self.quantizer.nearest(z_e.transpose(1, 2).reshape(-1, d)).view(b, f)

    def codes_to_latents(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, F) indices -> (B, D, F) code vectors."""
        return self.quantizer.lookup(indices)

    def decode_logits(self, indices: torch.Tensor, speaker: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B, F) codes, (B,) speaker, (B, F*64) audio -> (B, 256, F*64) logits."""
        target = mu_law_encode(audio, self.cfg.mu_classes)
        return self.decoder(previous_samples(target), self.codes_to_latents(indices), speaker)

    def num_parameters(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        parts = {
            "encoder": count(self.encoder),
            "quantizer": self.cfg.codebook_size * self.cfg.latent_dim,
            "decoder": count(self.decoder),
        }
        parts["total"] = sum(parts.values())
        return parts
