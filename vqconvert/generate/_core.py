"""What every generation backend shares: the decoder's weights in a flat fp32 form, the sampling rule,
and the driver loop that feeds an engine chunk after chunk (so memory stays bounded however long the
audio is). The conditioning, computed block by block, is `vqconvert.generate.conditioning`.

An *engine* holds the per-stream state (layer queues, previous sample, position) and advances streams:
    engine.run(ids, t0, n, unif, forced, want_logits) -> (indices (len(ids), n) int32, logits | None)
for streams `ids` (all at position t0, none ending before t0 + n).  Engines with `quantum > 1` (the CUDA
graph one) always advance every stream by whole multiples of `quantum` samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vqconvert.model.mulaw import mu_law_decode


@dataclass
class Weights:
    """The decoder's weights as fp32 CPU tensors, matrices (out, in), in the order of the equations."""

    L: int
    R: int
    G: int
    S: int
    H: int
    Q: int
    C: int
    dil: list[int]
    embed: torch.Tensor  # (Q, R)
    w0: torch.Tensor  # (L, G, R) applied to x[t - d]
    w1: torch.Tensor  # (L, G, R) applied to x[t]
    wr: torch.Tensor  # (L-1, R, G/2)
    br: torch.Tensor  # (L-1, R)
    ws: torch.Tensor  # (L, S, G/2)
    bs: torch.Tensor  # (L, S)
    wh1: torch.Tensor  # (H, S)
    bh1: torch.Tensor
    wh2: torch.Tensor  # (Q, H)
    bh2: torch.Tensor
    wc: torch.Tensor  # (L*G, C) conditioning projection
    bc: torch.Tensor  # (L*G,)

    @property
    def G2(self) -> int:
        return self.G // 2

    @staticmethod
    def from_model(model) -> Weights:
        dec = model.decoder
        cfg = model.cfg

        def f(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to("cpu", torch.float32).contiguous()

        L, R, G = cfg.n_layers, cfg.residual_channels, cfg.gate_channels
        dw = torch.stack([f(c.weight) for c in dec.dilated])  # (L, G, R, 2)
        if L > 1:
            wr = torch.stack([f(c.weight[:, :, 0]) for c in dec.res])
            br = torch.stack([f(c.bias) for c in dec.res])
        else:
            wr, br = torch.zeros(0, R, G // 2), torch.zeros(0, R)
        return Weights(
            L=L,
            R=R,
            G=G,
            S=cfg.skip_channels,
            H=cfg.head_channels,
            Q=cfg.mu_classes,
            C=cfg.cond_channels,
            dil=list(cfg.dilations),
            embed=f(dec.embed.weight),
            w0=dw[..., 0].contiguous(),
            w1=dw[..., 1].contiguous(),
            wr=wr,
            br=br,
            ws=torch.stack([f(c.weight[:, :, 0]) for c in dec.skip]),
            bs=torch.stack([f(c.bias) for c in dec.skip]),
            wh1=f(dec.head1.weight[:, :, 0]),
            bh1=f(dec.head1.bias),
            wh2=f(dec.head2.weight[:, :, 0]),
            bh2=f(dec.head2.bias),
            wc=f(dec.cond_proj.weight[:, :, 0]),
            bc=f(dec.cond_proj.bias),
        )

    def macs_per_sample(self) -> int:
        """Multiply-accumulates of one incremental step (conditioning excluded)."""
        per_layer = 2 * self.R * self.G + self.G2 * self.S
        return self.L * per_layer + (self.L - 1) * self.G2 * self.R + self.S * self.H + self.H * self.Q


def sample_indices(
    logits: torch.Tensor, inv_temp: float, greedy: bool, unif: torch.Tensor | np.ndarray | None
) -> torch.Tensor:
    """The one sampling rule of every backend: argmax when greedy, else inverse CDF of
    softmax(logits / T) at the given uniforms: p = exp((l - max) * (1/T)) in fp32, cumulated in fp64,
    first index whose cumulative sum exceeds u * total.  (B, Q) -> (B,) long."""
    if greedy:
        return logits.argmax(-1)
    m = logits.max(-1, keepdim=True).values
    p = torch.exp((logits - m) * inv_temp)
    cum = torch.cumsum(p.double(), -1)
    u = torch.as_tensor(unif, dtype=torch.float64, device=logits.device)
    target = (u * cum[:, -1]).unsqueeze(1)
    return torch.searchsorted(cum, target, right=True).squeeze(1).clamp_(max=logits.shape[-1] - 1)


def temperature_args(temperature: float, greedy: bool) -> tuple[float, bool]:
    if not greedy and not (temperature > 0 and math.isfinite(temperature)):
        if temperature == 0:
            return 1.0, True
        raise ValueError(f"temperature must be > 0 (got {temperature}); use greedy=True for argmax")
    return float(np.float32(1.0 / temperature)) if not greedy else 1.0, greedy


def check_inputs(model, codes, speakers) -> tuple[list[torch.Tensor], list[int]]:
    if len(codes) != len(speakers):
        raise ValueError(f"{len(codes)} code sequences but {len(speakers)} speakers")
    cfg = model.cfg
    out, spk = [], []
    for i, (c, s) in enumerate(zip(codes, speakers, strict=True)):
        c = torch.as_tensor(c).reshape(-1)
        if c.dtype.is_floating_point or c.dtype == torch.bool:
            raise ValueError(f"codes[{i}] must be integer indices, got {c.dtype}")
        c = c.long().cpu()
        if c.numel() and (int(c.min()) < 0 or int(c.max()) >= cfg.codebook_size):
            raise ValueError(f"codes[{i}] has indices outside [0, {cfg.codebook_size})")
        s = int(s)
        if not 0 <= s < max(cfg.n_speakers, 1):
            raise ValueError(f"speakers[{i}] = {s} is outside [0, {max(cfg.n_speakers, 1)})")
        out.append(c)
        spk.append(s)
    return out, spk


def drive(
    engine,
    lengths: list[int],
    *,
    chunk_samples: int,
    inv_temp: float,
    greedy: bool,
    seed: int | None,
    progress: Callable[[int, int], None] | None = None,
    forced: list[np.ndarray] | None = None,
    want_logits: bool = False,
) -> Iterator[tuple[list[np.ndarray], list[np.ndarray] | None]]:
    """Advance all streams, yielding per stream the mu-law indices (and logits) of the next
    up-to-chunk_samples samples; finished streams get empty arrays."""
    if chunk_samples < 1:
        raise ValueError("chunk_samples must be >= 1")
    B = len(lengths)
    T = np.asarray(lengths, dtype=np.int64)
    total = int(T.sum())
    tmax = int(T.max()) if B else 0
    use_unif = not greedy and forced is None
    if use_unif:
        base = seed if seed is not None else np.random.SeedSequence().entropy
        rngs = [np.random.default_rng([int(base), i]) for i in range(B)]
    q = max(1, int(getattr(engine, "quantum", 1)))
    pend_idx: list[list[np.ndarray]] = [[] for _ in range(B)]
    pend_lg: list[list[np.ndarray]] = [[] for _ in range(B)]
    produced = 0
    yielded = 0
    while yielded < tmax:
        target = min(yielded + chunk_samples, tmax)
        while produced < target:
            alive = np.flatnonzero(T > produced).astype(np.int32)
            if q > 1:
                n = q
            else:
                n = int(min(target, T[alive].min())) - produced
            unif = None
            if use_unif:
                unif = _draw(rngs, alive, T, produced, n)
            fz = None
            if forced is not None:
                fz = np.zeros((len(alive), n), dtype=np.int32)
                for r, i in enumerate(alive):
                    seg = forced[i][produced : produced + n]
                    fz[r, : len(seg)] = seg
            idx, lg = engine.run(alive, produced, n, unif, fz, want_logits)
            for r, i in enumerate(alive):
                keep = int(min(n, T[i] - produced))
                pend_idx[i].append(np.asarray(idx[r, :keep]))
                if want_logits:
                    pend_lg[i].append(np.asarray(lg[r, :keep]))
            produced += n
            if progress is not None:
                progress(int(np.minimum(T, produced).sum()), total)
        out_idx, out_lg = [], []
        for i in range(B):
            want = int(max(0, min(target, T[i]) - yielded))
            out_idx.append(_take(pend_idx[i], want, np.int32))
            if want_logits:
                out_lg.append(_take(pend_lg[i], want, np.float32))
        yielded = target
        yield out_idx, (out_lg if want_logits else None)


def _draw(rngs, alive, T, produced, n) -> np.ndarray:
    """Uniforms (len(alive), n): each stream draws only for samples it keeps, in order, so its sequence
    of uniforms is the same whatever the engine, chunking or batch; the rest (quantum engines) is 0."""
    u = np.zeros((len(alive), n))
    for r, i in enumerate(alive):
        k = int(min(n, T[i] - produced))
        u[r, :k] = rngs[i].random(k)
    return u


def _take(parts: list[np.ndarray], n: int, dtype) -> np.ndarray:
    """Pop the first n rows of a list of arrays (concatenated)."""
    if n == 0:
        return np.zeros((0,) + (parts[0].shape[1:] if parts else ()), dtype=dtype)
    got, size = [], 0
    while size < n:
        a = parts[0]
        need = n - size
        if len(a) <= need:
            got.append(parts.pop(0))
            size += len(a)
        else:
            got.append(a[:need])
            parts[0] = a[need:]
            size += need
    return np.concatenate(got).astype(dtype, copy=False)


_TABLES: dict[int, torch.Tensor] = {}


def to_audio(idx: np.ndarray, classes: int) -> torch.Tensor:
    """mu-law indices -> float32 samples, by table (elementwise math on different lengths can round
    differently, and streamed pieces must equal the one-shot output)."""
    if classes not in _TABLES:
        _TABLES[classes] = mu_law_decode(torch.arange(classes), classes).float()
    return _TABLES[classes][torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64))]
