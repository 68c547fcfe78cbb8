"""CodePrior: an autoregressive model over a VQ-VAE's code indices, conditioned on the speaker.

p(z_1..z_F | s) = prod_t p(z_t | z_<t, s): a GRU over code embeddings, with the speaker embedding added to
every input and mapped to the initial hidden state; a linear head gives K logits per step. The paper
(section 4.3) fits such a prior after the VQ-VAE is trained and samples from it to generate speech; its
NLL in bits per code is to be read against log2(K) (a uniform prior) and the unigram entropy of the codes
(a prior that ignores context). No I/O here: `vqconvert.prior.store` saves and loads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqconvert.config import strict_from_dict


@dataclass(frozen=True)
class PriorConfig:
    codebook_size: int = 512  # K of the VQ-VAE; index K is the start token
    n_speakers: int = 1
    embed_dim: int = 128
    speaker_dim: int = 32
    hidden: int = 384
    layers: int = 1
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PriorConfig:
        return strict_from_dict(cls, d, "prior")


PRIOR_PRESETS: dict[str, PriorConfig] = {
    "tiny": PriorConfig(embed_dim=16, speaker_dim=8, hidden=32),
    "small": PriorConfig(),
}


class CodePrior(nn.Module):
    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.codebook_size + 1, cfg.embed_dim)  # + start token
        self.speaker = nn.Embedding(max(cfg.n_speakers, 1), cfg.speaker_dim)
        self.speaker_in = nn.Linear(cfg.speaker_dim, cfg.embed_dim, bias=False)
        self.speaker_h0 = nn.Linear(cfg.speaker_dim, cfg.layers * cfg.hidden)
        self.rnn = nn.GRU(
            cfg.embed_dim, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.head = nn.Linear(cfg.hidden, cfg.codebook_size)

    @property
    def start(self) -> int:
        return self.cfg.codebook_size

    def initial_state(self, speaker: torch.Tensor) -> torch.Tensor:
        """(B,) speakers -> (layers, B, hidden) initial GRU state."""
        h = torch.tanh(self.speaker_h0(self.speaker(speaker)))
        return h.view(speaker.shape[0], self.cfg.layers, self.cfg.hidden).transpose(0, 1).contiguous()

    def step_inputs(self, tokens: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens) + self.speaker_in(self.speaker(speaker))[:, None, :]

    def forward(self, codes: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: codes (B, T), speaker (B,) -> logits (B, T, K), each position given the codes
        before it (a start token before the first)."""
        prev = F.pad(codes[:, :-1], (1, 0), value=self.start)
        out, _ = self.rnn(self.step_inputs(prev, speaker), self.initial_state(speaker))
        return self.head(out)

    def nll(self, codes: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per code) of codes (B, T) under the prior."""
        logits = self(codes, speaker)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), codes.reshape(-1))

    @torch.no_grad()
    def sample(
        self,
        speaker: torch.Tensor,
        frames: int,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(B,) speakers -> (B, frames) sampled code indices. temperature 0 = the most likely code."""
        b = speaker.shape[0]
        device = speaker.device
        state = self.initial_state(speaker)
        tok = torch.full((b, 1), self.start, dtype=torch.long, device=device)
        out = torch.empty(b, frames, dtype=torch.long, device=device)
        for t in range(frames):
            h, state = self.rnn(self.step_inputs(tok, speaker), state)
            logits = self.head(h[:, -1]).float()
            if temperature <= 0:
                nxt = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, -1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            out[:, t] = nxt
            tok = nxt[:, None]
        return out

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
