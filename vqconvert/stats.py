"""Histogram statistics shared by the evaluation, the prior and training: how often each code is used,
and the entropy and perplexity of such counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def code_counts(sequences: Iterable, k: int) -> np.ndarray:
    """(K,) int64 use counts of the indices in `sequences` (arrays or tensors of indices < k)."""
    counts = np.zeros(k, np.int64)
    for c in sequences:
        c = c.cpu().numpy() if hasattr(c, "cpu") else c
        counts += np.bincount(np.asarray(c, dtype=np.int64).reshape(-1), minlength=k)[:k]
    return counts


def entropy_bits(counts: Sequence[int] | np.ndarray) -> float:
    """Shannon entropy (bits) of the distribution given by `counts` (zeros ignored; 0 for no counts)."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))


def perplexity(counts: Sequence[int] | np.ndarray) -> float:
    """2 ** entropy: the number of equally likely outcomes with the same entropy (1..K)."""
    return float(2.0 ** entropy_bits(counts))
