"""Reference incremental generation in eager torch (`backend="torch"`): the fallback of every other
backend and the oracle the tests compare them with.  Batched over streams, one Python step per sample;
each layer keeps a queue (ring buffer) of its last `dilation` inputs, so a sample costs O(layers).
(The naive generator, a full teacher-forced recompute per sample, is in bench/naive.py.)"""

from __future__ import annotations

import numpy as np
import torch

from vqconvert.generate._core import Weights, sample_indices
from vqconvert.generate.conditioning import CondCache, Conditioner
from vqconvert.model.mulaw import SILENCE


class TorchEngine:
    quantum = 1

    def __init__(
        self, w: Weights, cond: Conditioner, n_streams: int, inv_temp: float = 1.0, greedy: bool = False
    ) -> None:
        self.w, self.cache = w, CondCache(cond)
        self.inv_temp, self.greedy = inv_temp, greedy
        B = n_streams
        self.queues = [torch.zeros(B, d, w.R) for d in w.dil]
        self.prev = torch.full((B,), SILENCE, dtype=torch.long)
        # matrices transposed for x @ W.T, biases with the skip biases summed once
        self.w0T = w.w0.transpose(1, 2).contiguous()
        self.w1T = w.w1.transpose(1, 2).contiguous()
        self.wrT = w.wr.transpose(1, 2).contiguous()
        self.wsT = w.ws.transpose(1, 2).contiguous()
        self.bs = w.bs.sum(0)
        self.wh1T, self.wh2T = w.wh1.t().contiguous(), w.wh2.t().contiguous()

    @torch.no_grad()
    def step(self, ids: torch.Tensor | slice, cond: torch.Tensor, t: int) -> torch.Tensor:
        """One sample for streams `ids` at time t; cond (n, L*G) -> logits (n, Q)."""
        w = self.w
        G, G2 = w.G, w.G2
        x = w.embed[self.prev[ids]]
        skip = self.bs
        for layer, d in enumerate(w.dil):
            q = self.queues[layer]
            slot = t % d
            h = torch.addmm(cond[:, layer * G : (layer + 1) * G], q[ids, slot], self.w0T[layer])
            h.addmm_(x, self.w1T[layer])
            q[ids, slot] = x  # after its old content (x[t - d]) was used
            z = torch.tanh(h[:, :G2]) * torch.sigmoid(h[:, G2:])
            skip = torch.addmm(skip, z, self.wsT[layer])
            if layer < w.L - 1:
                x = torch.addmm(x + w.br[layer], z, self.wrT[layer])
        a = torch.relu(torch.addmm(w.bh1, torch.relu(skip), self.wh1T))
        return torch.addmm(w.bh2, a, self.wh2T)

    @torch.no_grad()
    def run(
        self, ids: np.ndarray, t0: int, n: int, unif: np.ndarray | None, forced: np.ndarray | None, want_logits: bool
    ):
        B = self.prev.shape[0]
        sel: torch.Tensor | slice = slice(None) if len(ids) == B else torch.as_tensor(ids, dtype=torch.long)
        out = np.zeros((len(ids), n), dtype=np.int32)
        lg_out = np.zeros((len(ids), n, self.w.Q), dtype=np.float32) if want_logits else None
        for a, b, cond, base, div, rows in self.cache.segments(ids, t0, n):
            rows_t = torch.as_tensor(rows, dtype=torch.long)
            for t in range(a, b):
                c = cond[rows_t, (t - base) // div]
                logits = self.step(sel, c, t)
                s = t - t0
                if forced is not None:
                    nxt = torch.as_tensor(forced[:, s], dtype=torch.long)
                else:
                    nxt = sample_indices(logits, self.inv_temp, self.greedy, None if unif is None else unif[:, s])
                self.prev[sel] = nxt
                out[:, s] = nxt.numpy()
                if lg_out is not None:
                    lg_out[:, s] = logits.numpy()
        return out, lg_out
