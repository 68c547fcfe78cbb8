"""CUDA generation (`backend="cuda"`): the incremental step on static device buffers, one frame of
steps (64 samples) recorded once in a CUDA graph and replayed, so a sample costs kernel executions only, no Python
and no launch overhead.  Per step: one gather of every layer's queued input x[t - d] and one batched
matmul for all the W0 terms (they only depend on the past), then per layer four kernels: W1 x, one tanh
over the whole gate (sigmoid(h) = (1 + tanh(h / 2)) / 2, with the halves folded into the weights),
z = t_a + t_a t_b, and the residual matmul (biases ride on a constant-1 column of z); then one matmul
for all the skip projections, the head, sampling, and one scatter of the layer inputs into the queues.
Weights and activations in fp32 by default; VQCONVERT_GEN_CUDA_DTYPE=bf16|fp16 stores them in half
precision (logits and sampling stay fp32/fp64).

Import-safe without a GPU.  The same engine runs eagerly on any device (`use_graph=False`), which is
how the CPU tests check it.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from vqconvert.generate._core import Weights, sample_indices
from vqconvert.generate.conditioning import Conditioner
from vqconvert.model.mulaw import SILENCE


class GraphEngine:
    def __init__(
        self,
        w: Weights,
        cond: Conditioner,
        n_streams: int,
        inv_temp: float = 1.0,
        greedy: bool = False,
        device: str | torch.device | None = None,
        steps: int | None = None,
        use_graph: bool | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        dev = torch.device(device) if device is not None else torch.device("cuda")
        self.dev, self.w, self.cond = dev, w, cond
        steps = cond.hop if steps is None else steps  # one frame of codes per replay
        self.quantum = steps
        self.use_graph = dev.type == "cuda" if use_graph is None else use_graph
        self.inv_temp, self.greedy = inv_temp, greedy
        B, L, R, G, G2, S = max(n_streams, 1), w.L, w.R, w.G, w.G2, w.S
        self.B = B
        if dtype is None:
            name = os.environ.get("VQCONVERT_GEN_CUDA_DTYPE", "fp32").lower()
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name, torch.float32)
        dt = dtype
        # gate rows: the sigmoid half scaled by 1/2 (tanh(h/2)), and z = t_a (1 + t_b) is twice the
        # true z, so the matrices reading z are halved (all exact: powers of two)
        half = torch.ones(G)
        half[G2:] = 0.5

        def d(t: torch.Tensor, typ=dt) -> torch.Tensor:
            return t.to(dev, typ).contiguous()

        self.E = d(w.embed)
        self.w0T = d((w.w0 * half[:, None]).transpose(1, 2))  # (L, R, G)
        self.w1T = d((w.w1 * half[:, None]).transpose(1, 2))
        wr_aug = torch.cat([0.5 * w.wr.transpose(1, 2), w.br[:, None, :]], dim=1)  # (L-1, G2+1, R)
        self.wrT = d(wr_aug)  # the last row of each layer's matrix is its bias
        ws_aug = torch.cat([0.5 * w.ws.transpose(1, 2), w.bs[:, None, :]], dim=1)
        self.wsT = d(ws_aug.reshape(L * (G2 + 1), S))
        self.wh1T, self.bh1 = d(w.wh1.t()), d(w.bh1)
        self.wh2T, self.bh2 = d(w.wh2.t()), d(w.bh2)
        lhalf = half.repeat(L)
        self.wcT = d(cond.wcT * lhalf)  # (C, L*G)
        self.cbias = torch.zeros(B, L * G, device=dev, dtype=dt)
        self.cbias[:n_streams] = d(cond.bias * lhalf)
        # state
        offs = np.concatenate([[0], np.cumsum(w.dil)[:-1]])
        self.offs = torch.as_tensor(offs, dtype=torch.long, device=dev)
        self.dil = torch.as_tensor(w.dil, dtype=torch.long, device=dev)
        self.queue = torch.zeros(int(sum(w.dil)), B, R, device=dev, dtype=dt)
        self.pos = torch.zeros((), dtype=torch.long, device=dev)
        self.prev = torch.full((B,), SILENCE, dtype=torch.long, device=dev)
        self.xs = torch.zeros(L, B, R, device=dev, dtype=dt)
        self.z = torch.zeros(B, L, G2 + 1, device=dev, dtype=dt)
        self.z[:, :, G2] = 1.0
        # per-replay inputs and outputs
        rows = steps if cond.transposed else 1
        self.feat = torch.zeros(B, rows, w.C, device=dev, dtype=dt)
        self.unif = torch.zeros(B, steps, dtype=torch.float64, device=dev)
        self.forced = torch.zeros(B, steps, dtype=torch.long, device=dev)
        self.out = torch.zeros(B, steps, dtype=torch.long, device=dev)
        self.logits = torch.zeros(B, steps, w.Q, device=dev, dtype=torch.float32)
        self.graphs: dict[tuple[bool, bool], object] = {}
        self.calls = 0

    def _step(self, k: int, cond: torch.Tensor, forced: bool, want_logits: bool) -> None:
        w = self.w
        L, G2 = w.L, w.G2
        rows = torch.remainder(self.pos, self.dil).add_(self.offs)  # queue slot of x[t - d] per layer
        past = self.queue.index_select(0, rows)  # (L, B, R)
        hp = torch.baddbmm(cond, past, self.w0T)  # (L, B, G): every W0 term at once
        torch.index_select(self.E, 0, self.prev, out=self.xs[0])
        for layer in range(L):
            t = torch.addmm(hp[layer], self.xs[layer], self.w1T[layer]).tanh_()
            torch.addcmul(t[:, :G2], t[:, :G2], t[:, G2:], out=self.z[:, layer, :G2])
            if layer < L - 1:
                torch.addmm(self.xs[layer], self.z[:, layer], self.wrT[layer], out=self.xs[layer + 1])
        self.queue.index_copy_(0, rows, self.xs)
        skip = self.z.view(self.B, -1) @ self.wsT
        a = torch.relu(torch.addmm(self.bh1, torch.relu(skip), self.wh1T))
        logits = torch.addmm(self.bh2, a, self.wh2T).float()
        if forced:
            nxt = self.forced[:, k]
        else:
            nxt = sample_indices(logits, self.inv_temp, self.greedy, None if self.greedy else self.unif[:, k])
        self.prev.copy_(nxt)
        self.out[:, k].copy_(nxt)
        if want_logits:
            self.logits[:, k].copy_(logits)
        self.pos.add_(1)

    def _replay_body(self, forced: bool, want_logits: bool) -> None:
        w = self.w
        cond = torch.baddbmm(self.cbias[:, None, :], self.feat, self.wcT.expand(self.B, -1, -1))
        cond = cond.view(self.B, -1, w.L, w.G)  # (B, rows, L, G)
        for k in range(self.quantum):
            c = cond[:, k if cond.shape[1] > 1 else 0].transpose(0, 1)  # (L, B, G)
            self._step(k, c, forced, want_logits)

    @torch.no_grad()
    def run(
        self, ids: np.ndarray, t0: int, n: int, unif: np.ndarray | None, forced: np.ndarray | None, want_logits: bool
    ):
        if n != self.quantum or t0 % self.quantum:
            raise ValueError("the CUDA engine advances whole frames")
        B = self.B
        allid = torch.arange(len(self.cond.lengths))
        feat, _, _ = self.cond.features(allid, t0, t0 + n)
        fb = torch.zeros(B, self.feat.shape[1], self.w.C)
        fb[: len(allid)] = feat
        self.feat.copy_(fb, non_blocking=True)
        ids_t = torch.as_tensor(ids, dtype=torch.long)
        if unif is not None:
            u = torch.zeros(B, n, dtype=torch.float64)
            u[ids_t] = torch.from_numpy(np.asarray(unif, dtype=np.float64))
            self.unif.copy_(u, non_blocking=True)
        if forced is not None:
            f = torch.zeros(B, n, dtype=torch.long)
            f[ids_t] = torch.from_numpy(np.asarray(forced, dtype=np.int64))
            self.forced.copy_(f, non_blocking=True)
        key = (forced is not None, bool(want_logits))
        if not self.use_graph:
            self._replay_body(*key)
        elif key in self.graphs:
            self.graphs[key].replay()
        elif self.calls == 0:
            # first call: run eagerly on a side stream (warms cuBLAS up), capture on the next one
            s = torch.cuda.Stream(self.dev)
            s.wait_stream(torch.cuda.current_stream(self.dev))
            with torch.cuda.stream(s):
                self._replay_body(*key)
            torch.cuda.current_stream(self.dev).wait_stream(s)
        else:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                self._replay_body(*key)
            self.graphs[key] = g
            g.replay()
        self.calls += 1
        out = self.out.cpu().numpy()[ids].astype(np.int32)
        lg = self.logits.cpu().numpy()[ids] if want_logits else None
        return out, lg
