"""VQVAE: encoder -> vector quantizer -> WaveNet decoder conditioned on codes and speaker."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqconvert.config import ModelConfig
from vqconvert.model.encoder import Encoder
from vqconvert.model.encoding import DEFAULT_CHUNK_FRAMES, encode_exact
from vqconvert.model.mel import LogMel
from vqconvert.model.mulaw import SILENCE, mu_law_encode
from vqconvert.model.quantizer import VectorQuantizer
from vqconvert.model.wavenet import WaveNet


@dataclass
class LossOutput:
    loss: torch.Tensor  # what is minimised: nll + codebook + commitment (+ mel_weight * mel)
    nll: torch.Tensor  # teacher-forced cross-entropy, nats per sample
    codebook: torch.Tensor
    commitment: torch.Tensor
    perplexity: torch.Tensor
    used: torch.Tensor
    mel: torch.Tensor | None = None  # L1 of the log-mel head against the audio's log-mel (mel_bins > 0)

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
        if cfg.mel_bins > 0:
            self.log_mel = LogMel(cfg.sample_rate, cfg.mel_bins, cfg.hop)

    def forward(
        self,
        audio: torch.Tensor,
        speaker: torch.Tensor,
        encoder_input: torch.Tensor | None = None,
        prev_noise: torch.Tensor | None = None,
        true_mel: torch.Tensor | None = None,
    ) -> LossOutput:
        """audio (B, T) in [-1, 1] with T a multiple of 64, speaker (B,) -> loss terms. `encoder_input`
        (B, T), if given, is what the encoder sees instead of `audio` (a perturbed copy of it).
        `prev_noise` (B,): std, in mu-law index units, of Gaussian noise added to each crop's
        previous-sample input (the targets stay clean), so the decoder learns to follow the codes
        rather than copy a perfect past it will not have when it generates. `true_mel` (B,) bool, with
        `mel_cond_blocks`: crops whose WaveNet reads the audio's own log-mel instead of the prediction."""
        q = self.quantizer(self.encoder(audio if encoder_input is None else encoder_input))
        target = mu_law_encode(audio, self.cfg.mu_classes)
        prev = previous_samples(target)
        if prev_noise is not None:
            noise = torch.randn(prev.shape, device=prev.device) * prev_noise.float().reshape(-1, 1)
            prev = (prev + noise.round().long()).clamp_(0, self.cfg.mu_classes - 1)
        mel_target = self.log_mel(audio) if self.cfg.mel_bins > 0 else None
        frames, mel_pred = self.decoder.conditioning(q.z_q, speaker, mel_target, true_mel)
        logits = self.decoder(prev, q.z_q, speaker, frames=frames)
        nll = F.cross_entropy(logits.float(), target)
        loss = nll + q.codebook_loss + q.commitment_loss
        mel = None
        if mel_target is not None:
            mel = F.l1_loss(mel_pred.float(), mel_target)
            loss = loss + self.cfg.mel_weight * mel
        return LossOutput(loss, nll, q.codebook_loss, q.commitment_loss, q.perplexity, q.used, mel)

    def mel_loss(self, mel_pred: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """L1 between the mel head's (B, mel_bins, F) prediction and the log-mel of (B, F * 64) audio."""
        return F.l1_loss(mel_pred.float(), self.log_mel(audio))

    @torch.no_grad()
    def predict_mel(self, indices: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """(B, F) codes, (B,) speakers -> (B, mel_bins, F) log-mel from the auxiliary head."""
        if self.cfg.mel_bins <= 0:
            raise ValueError("this model has no mel head (mel_bins = 0)")
        return self.decoder.conditioning(self.codes_to_latents(indices), speaker)[1]

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> torch.Tensor:
        """(B, T) waveform, T a multiple of 64 -> (B, T/64) code indices, by `encode_exact` row by row
        (float64, chunked with context: the same codes however long the audio)."""
        return torch.stack([encode_exact(self, row, chunk_frames) for row in audio])

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
