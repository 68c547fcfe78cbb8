"""Vector quantizer with straight-through gradients, plus the fixes every peer needed against collapse:
k-means++ initialisation from data, dead-code restart, and optional EMA codebook updates."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqconvert.model.encoding import nearest_code
from vqconvert.stats import perplexity_tensor


@dataclass
class QuantizerOutput:
    z_q: torch.Tensor  # (B, D, F) straight-through quantized latents
    indices: torch.Tensor  # (B, F) long
    codebook_loss: torch.Tensor  # ||sg[z_e] - e||^2 (zero with EMA updates)
    commitment_loss: torch.Tensor  # beta * ||z_e - sg[e]||^2
    perplexity: torch.Tensor  # 2 ** entropy (bits) of code usage in the batch (vqconvert.stats)
    used: torch.Tensor  # number of distinct codes in the batch


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def kmeans_pp(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeding: (N, D) points -> (k, D) centres (with replacement when N < k)."""
    n = x.shape[0]
    if n <= k:
        idx = torch.randint(n, (k,), generator=generator, device=x.device)
        return x[idx] + 1e-3 * torch.randn(k, x.shape[1], generator=generator, device=x.device)
    centres = [x[torch.randint(n, (1,), generator=generator, device=x.device)].squeeze(0)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2 / d2.sum().clamp_min(1e-12)
        i = torch.multinomial(probs, 1, generator=generator).item()
        centres.append(x[i])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    return torch.stack(centres)


class VectorQuantizer(nn.Module):
    """(B, D, F) z_e -> nearest of K codes. Training-time state (usage, init flag) lives in buffers."""

    def __init__(
        self, k: int, dim: int, beta: float = 0.25, ema: bool = False, decay: float = 0.99, dead_code_steps: int = 20
    ) -> None:
        super().__init__()
        self.k, self.dim, self.beta, self.ema, self.decay = k, dim, beta, ema, decay
        self.dead_code_steps = dead_code_steps
        init = torch.randn(k, dim) / dim**0.5
        if ema:
            self.register_buffer("codebook", init.clone())
            self.register_buffer("ema_count", torch.ones(k))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("unused_steps", torch.zeros(k, dtype=torch.long))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) index of the nearest code (squared Euclidean distance, fp32)."""
        return nearest_code(flat.float(), self.codebook.float())

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, F) indices -> (B, D, F) code vectors."""
        return F.embedding(indices, self.codebook).transpose(1, 2)

    @torch.no_grad()
    def _init_from_data(self, flat: torch.Tensor) -> None:
        centres = kmeans_pp(flat.float(), self.k)
        dist = _dist()
        if dist is not None:
            dist.broadcast(centres, 0)
        self.codebook.data.copy_(centres)
        if self.ema:
            self.ema_sum.copy_(centres)
            self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_usage(self, flat: torch.Tensor, counts: torch.Tensor) -> None:
        """Count steps each code went unused; re-seed codes unused for `dead_code_steps` steps."""
        self.unused_steps.add_(1)
        self.unused_steps[counts > 0] = 0
        if self.dead_code_steps <= 0:
            return
        dead = (self.unused_steps >= self.dead_code_steps).nonzero().squeeze(1)
        if dead.numel() == 0:
            return
        pick = torch.randint(flat.shape[0], (dead.numel(),), device=flat.device)
        scale = 0.01 * flat.float().std(0, keepdim=True).clamp_min(1e-6)  # noise relative to the data
        new = flat[pick].float() + scale * torch.randn(dead.numel(), self.dim, device=flat.device)
        dist = _dist()
        if dist is not None:
            dist.broadcast(new, 0)
        self.codebook.data[dead] = new.to(self.codebook.dtype)
        if self.ema:
            self.ema_sum[dead] = new
            self.ema_count[dead] = 1.0
        self.unused_steps[dead] = 0

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, onehot: torch.Tensor) -> None:
        counts, sums = onehot.sum(0), onehot.t() @ flat.float()
        dist = _dist()
        if dist is not None:
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + 1e-5) / (n + self.k * 1e-5) * n  # Laplace smoothing
        self.codebook.copy_(self.ema_sum / count[:, None])

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        b, d, f = z_e.shape
        flat = z_e.transpose(1, 2).reshape(-1, d)
        if self.training and not bool(self.initialized):
            self._init_from_data(flat.detach())
        idx = self.nearest(flat.detach())
        onehot = F.one_hot(idx, self.k).float()
        counts = onehot.sum(0)
        if self.training:
            dist = _dist()
            all_counts = counts.clone()
            if dist is not None:
                dist.all_reduce(all_counts)
            if self.ema:
                self._ema_update(flat.detach(), onehot)
            self._update_usage(flat.detach(), all_counts)
        z_q = self.lookup(idx.view(b, f)).to(z_e.dtype)
        commitment = self.beta * F.mse_loss(z_e.float(), z_q.detach().float())
        codebook = z_e.new_zeros((), dtype=torch.float32) if self.ema else F.mse_loss(z_q.float(), z_e.detach().float())
        z_st = z_e + (z_q - z_e).detach()
        ppl = perplexity_tensor(counts)
        return QuantizerOutput(z_st, idx.view(b, f), codebook, commitment, ppl, (counts > 0).sum())
