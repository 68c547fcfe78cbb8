"""WaveNet decoder: causal dilated convolutions, gated units, residual and skip connections, local
conditioning on upsampled codes and global conditioning on a speaker embedding; 256-way mu-law softmax.

Layer l at time t (Gt = gate_channels, half tanh, half sigmoid):
    h = W0_l x[t - d_l] + W1_l x[t] + b_l + C_l u[t] + V_l s
    z = tanh(h[:Gt/2]) * sigmoid(h[Gt/2:])
    skip += Ws_l z + bs_l ;  x = x + Wr_l z + br_l  (no Wr for the last layer)
logits = W2 relu(W1 relu(skip) + b1) + b2, with x[0] = embed(previous mu-law sample).
u is the frame features: relu(conv_k3(codes)) in the paper's form, or with `cond_blocks > 0` the output
of `CondNet` over the codes and the speaker embedding (vqconvert.model.condnet), or with
`mel_cond_blocks > 0` of a second `CondNet` over the log-mel that the first one's head predicts; either
way constant over a frame with "repeat" upsampling.
The incremental generators in `vqconvert.generate` rely on exactly this structure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vqconvert.config import ModelConfig
from vqconvert.model.condnet import CondNet
from vqconvert.model.mel import normalise


class WaveNet(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        r, g, s, c = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.cond_channels
        n = cfg.n_layers
        self.dilations = cfg.dilations
        self.embed = nn.Embedding(cfg.mu_classes, r)
        if cfg.cond_blocks > 0:
            self.cond_net = CondNet(cfg.latent_dim, cfg.speaker_dim, c, cfg.cond_dilations)
        else:
            self.cond_in = nn.Conv1d(cfg.latent_dim, c, 3, padding=1)
        if cfg.mel_bins > 0:
            self.mel_head = nn.Conv1d(c, cfg.mel_bins, 1)
        if cfg.mel_cond_blocks > 0:
            if cfg.cond_blocks <= 0 or cfg.mel_bins <= 0:
                raise ValueError("mel_cond_blocks needs cond_blocks > 0 and mel_bins > 0")
            self.mel_cond_net = CondNet(cfg.mel_bins, cfg.speaker_dim, c, cfg.mel_cond_dilations)
        if cfg.upsample == "transposed":
            self.upsample = nn.ConvTranspose1d(c, c, 2 * cfg.hop, stride=cfg.hop, padding=cfg.hop // 2)
        elif cfg.upsample != "repeat":
            raise ValueError(f"unknown upsample mode {cfg.upsample!r}")
        self.speaker = nn.Embedding(max(cfg.n_speakers, 1), cfg.speaker_dim)
        # Conditioning for every layer in one projection: (C) -> (n_layers * Gt).
        self.cond_proj = nn.Conv1d(c, n * g, 1)
        self.speaker_proj = nn.Linear(cfg.speaker_dim, n * g, bias=False)
        # Zero init: with the default init every speaker starts with large random per-layer biases that its
        # embedding, seen in ~1/n_speakers of the crops, unlearns too slowly; the true speaker then fits no
        # better than any other. From zero the shared projection learns speaker differences from step one.
        nn.init.zeros_(self.speaker_proj.weight)
        self.dilated = nn.ModuleList([nn.Conv1d(r, g, 2, dilation=d, bias=False) for d in self.dilations])
        # The last layer feeds only the skip path, so it has no residual projection.
        self.res = nn.ModuleList([nn.Conv1d(g // 2, r, 1) for _ in range(n - 1)])
        self.skip = nn.ModuleList([nn.Conv1d(g // 2, s, 1) for _ in range(n)])
        self.head1 = nn.Conv1d(s, cfg.head_channels, 1)
        self.head2 = nn.Conv1d(cfg.head_channels, cfg.mu_classes, 1)

    def conditioning(
        self,
        z_q: torch.Tensor,
        speaker: torch.Tensor,
        true_mel: torch.Tensor | None = None,
        use_true: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, D, F) codes, (B,) speakers -> (B, C, F) frame features before upsampling (constant over a
        frame in 'repeat' mode) and the (B, mel_bins, F) predicted log-mel (None without a mel head).
        Training only, with `mel_cond_blocks`: the crops where `use_true` (B,) is set are conditioned on
        `true_mel` (B, mel_bins, F), the audio's own log-mel, instead of the prediction."""
        if self.cfg.cond_blocks <= 0:
            return torch.relu(self.cond_in(z_q)), None
        spk = self.speaker(speaker)
        u = self.cond_net(z_q, spk)
        mel = self.mel_head(u) if self.cfg.mel_bins > 0 else None
        if self.cfg.mel_cond_blocks > 0:
            # Gradient stopped: the mel head learns from its L1 alone, so the WaveNet's loss cannot bend the
            # prediction away from a log-mel (what the jointly trained head of `small-cond` suffered).
            read = mel.detach()
            if use_true is not None and true_mel is not None:
                read = torch.where(use_true[:, None, None], true_mel.to(read.dtype), read)
            u = self.mel_cond_net(normalise(read), spk)
        return u, mel

    def frame_features(self, z_q: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """(B, D, F) codes, (B,) speakers -> (B, C, F) features before upsampling."""
        return self.conditioning(z_q, speaker)[0]

    def cond_features(self, z_q: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """(B, D, F) codes, (B,) speakers -> (B, C, F * hop) conditioning features at the sample rate."""
        return self.upsample_features(self.frame_features(z_q, speaker))

    def upsample_features(self, u: torch.Tensor) -> torch.Tensor:
        """(B, C, F) frame features -> (B, C, F * hop)."""
        if self.cfg.upsample == "repeat":
            return u.repeat_interleave(self.cfg.hop, dim=2)
        return torch.relu(self.upsample(u))

    def layer_bias(self, speaker: torch.Tensor) -> torch.Tensor:
        """(B,) speaker ids -> (B, n_layers * Gt) per-layer bias from the speaker embedding."""
        return self.speaker_proj(self.speaker(speaker))

    def layer_cond(self, u: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """(B, C, T) features, (B,) speakers -> (B, n_layers * Gt, T): everything a layer adds but W0/W1 x."""
        return self.cond_proj(u) + self.layer_bias(speaker)[:, :, None]

    def forward(
        self, prev: torch.Tensor, z_q: torch.Tensor, speaker: torch.Tensor, frames: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher forcing. prev (B, T) long: mu-law sample before each step; z_q (B, D, T/hop);
        speaker (B,); frames: `frame_features(z_q, speaker)` if already computed -> logits (B, 256, T)."""
        # Computed time-major, (B, T, C), with every convolution as a matrix product: on CPU the
        # 1x1 and dilated convolutions otherwise fall back to slow im2col kernels.
        g = self.cfg.gate_channels
        repeat = self.cfg.upsample == "repeat"
        # With 'repeat' upsampling the projection is constant over a frame: project, then repeat.
        u = self.frame_features(z_q, speaker) if frames is None else frames
        u = (u if repeat else self.upsample_features(u)).transpose(1, 2)
        cond = F.linear(u, _w(self.cond_proj), self.cond_proj.bias) + self.layer_bias(speaker)[:, None, :]
        conds = cond.chunk(self.cfg.n_layers, dim=2)  # chunk, not slicing: a cheap backward
        x = self.embed(prev)
        b, t = x.shape[:2]
        # 'repeat': each layer adds its (B, F, Gt) frame conditioning to the (B, F, hop, Gt) view of h, a
        # broadcast, so the (B, T, n_layers * Gt) repeated tensor (300+ MB per training batch) never exists.
        frames = (b, t // self.cfg.hop, self.cfg.hop, g) if repeat else None
        skip = 0
        for i, (d, conv) in enumerate(zip(self.dilations, self.dilated, strict=True)):
            w = conv.weight  # (Gt, R, 2): tap 0 sees x(t - d), tap 1 sees x(t)
            past = F.pad(x, (0, 0, d, 0))[:, :t]
            h = F.linear(torch.cat([past, x], dim=2), torch.cat([w[:, :, 0], w[:, :, 1]], dim=1))
            h = (h.view(frames) + conds[i][:, :, None]).view(b, t, g) if repeat else h + conds[i]
            z = torch.tanh(h[..., : g // 2]) * torch.sigmoid(h[..., g // 2 :])
            skip = skip + F.linear(z, _w(self.skip[i]), self.skip[i].bias)
            if i < len(self.res):
                x = x + F.linear(z, _w(self.res[i]), self.res[i].bias)
        h = torch.relu(F.linear(torch.relu(skip), _w(self.head1), self.head1.bias))
        return F.linear(h, _w(self.head2), self.head2.bias).transpose(1, 2)


def _w(conv: nn.Conv1d) -> torch.Tensor:
    """(out, in, 1) weight of a 1x1 convolution as an (out, in) matrix."""
    return conv.weight.squeeze(2)
