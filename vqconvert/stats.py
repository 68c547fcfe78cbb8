"""Statistics shared by the evaluation, the prior and training: how often each code is used, the entropy
and perplexity of such counts (one definition, in torch so that it also runs inside a compiled training
step), and the speaker gain of a decoder."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch


def code_counts(sequences: Iterable, k: int) -> np.ndarray:
    """(K,) int64 use counts of the indices in `sequences` (arrays or tensors of indices < k)."""
    counts = np.zeros(k, np.int64)
    for c in sequences:
        c = c.cpu().numpy() if hasattr(c, "cpu") else c
        counts += np.bincount(np.asarray(c, dtype=np.int64).reshape(-1), minlength=k)[:k]
    return counts


def entropy_bits_tensor(counts: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (bits, a 0-dim tensor) of the distribution given by (K,) `counts`: zeros ignored,
    0 for no counts. No data-dependent shapes or host syncs, so it runs inside a compiled graph."""
    c = counts if counts.is_floating_point() else counts.double()
    p = c / c.sum().clamp_min(torch.finfo(c.dtype).tiny)
    plogp = p * torch.log2(torch.where(p > 0, p, torch.ones_like(p)))  # 0 log 0 = 0
    return torch.clamp_min(0.0 - plogp.sum(), 0.0)  # 0.0 - (not unary minus): no -0.0


def perplexity_tensor(counts: torch.Tensor) -> torch.Tensor:
    """2 ** entropy of (K,) `counts` as a 0-dim tensor: the number of equally likely outcomes (1..K)."""
    return torch.exp2(entropy_bits_tensor(counts))


def entropy_bits(counts: Sequence[int] | np.ndarray) -> float:
    """`entropy_bits_tensor` of counts given as a sequence or array, in float64."""
    return float(entropy_bits_tensor(torch.as_tensor(np.asarray(counts, dtype=np.float64))))


def perplexity(counts: Sequence[int] | np.ndarray) -> float:
    """2 ** `entropy_bits` of counts given as a sequence or array."""
    return float(2.0 ** entropy_bits(counts))


def speaker_gain(own: float, others: Sequence[float]) -> float:
    """How much the decoder uses the speaker: the mean over other speakers of (NLL of the audio decoded
    as that speaker - NLL decoded as its true one), in the NLLs' unit; near 0, changing the speaker will
    not change the voice. Validation passes one (rotated) other speaker, evaluation the target voices."""
    return sum(others) / len(others) - own
