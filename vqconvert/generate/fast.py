"""Fast CPU generation (`backend="c"`): the whole per-sample loop of a chunk runs inside a small C kernel
(vqconvert/csrc/wavenet_gen.c, built and loaded by `vqconvert.generate.clib`), batched over streams so each
weight is read once per step for all of them.  Weights are stored row-tiled in fp16 (converted with F16C)
or fp32.

Environment: VQCONVERT_GEN_THREADS (auto, 1 or 2; default auto), VQCONVERT_GEN_WEIGHTS (fp16 | fp32;
default fp16).
"""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np
import torch

from vqconvert.generate._core import Weights
from vqconvert.generate.clib import MODEL_PTRS, JobStruct, ModelStruct
from vqconvert.generate.conditioning import CondCache, Conditioner
from vqconvert.model.mulaw import SILENCE


def supported(w: Weights) -> bool:
    return (
        w.R % 8 == 0
        and w.G % 16 == 0
        and w.S % 8 == 0
        and w.H % 8 == 0
        and w.Q % 8 == 0
        and all(d > 0 and d & (d - 1) == 0 for d in w.dil)
    )


def gate_perm(G: int) -> np.ndarray:
    """Gate rows in the kernel's order: 8 tanh rows, the 8 matching sigmoid rows, the next 8, ..."""
    G2 = G // 2
    return np.concatenate([np.r_[8 * p : 8 * p + 8, G2 + 8 * p : G2 + 8 * p + 8] for p in range(G2 // 8)])


def _tiles(m: np.ndarray) -> np.ndarray:
    """(..., M, K) -> (..., M/8, K, 8): eight output rows side by side for each input element."""
    *lead, M, K = m.shape
    return np.ascontiguousarray(m.reshape(*lead, M // 8, 8, K).swapaxes(-1, -2))


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """0 = automatic (two threads where it pays, see ThreadChoice), or 1 / 2 from VQCONVERT_GEN_THREADS."""
    v = os.environ.get("VQCONVERT_GEN_THREADS", "auto").strip().lower()
    if v in ("", "auto", "0"):
        return 0 if _cores() >= 2 else 1
    try:
        return 2 if int(v) >= 2 and _cores() >= 2 else 1
    except ValueError:
        return 0 if _cores() >= 2 else 1


class ThreadChoice:
    """Automatic thread count, by measurement.  Two threads split every layer across two cores (bitwise
    the same result as one); that pays only with enough work per step and a second core that is free,
    which on a shared machine changes by the second.  So: time every kernel call per sample and stream,
    keep a running cost for one and for two threads, use the cheaper, and now and then (every 8th call,
    less often each time the other choice loses) try the other for a short call.  Inside a call the
    kernel itself drops to one thread when it spends over 40% of its time waiting for the second (that
    call then counts as a loss for two threads)."""

    MIN_MACS = 250_000  # per step, all streams: below this the barriers cost more than they save
    PROBE = 256  # samples of a trial call

    def __init__(self) -> None:
        self.cost: dict[int, float | None] = {1: None, 2: None}
        self.every = 8
        self.count = 0
        self.exploring = False

    def pick(self, macs_per_step: int) -> tuple[int, bool]:
        """-> (threads, probe): a probe is a short call (PROBE samples) that tries the other choice."""
        if macs_per_step < self.MIN_MACS:
            return 1, False
        for k in (1, 2):  # one thread first: the first call also pays the cold start
            if self.cost[k] is None:
                self.exploring = False
                return k, True
        best = 1 if self.cost[1] <= self.cost[2] else 2
        self.count += 1
        self.exploring = self.count % self.every == 0
        return (3 - best, True) if self.exploring else (best, False)

    def report(self, threads: int, seconds: float, work: int, solo_step: int) -> None:
        """work: samples x streams of the call; solo_step >= 0: a 2-thread call that went solo."""
        per = seconds / max(work, 1)
        if threads == 2 and solo_step >= 0:
            per *= 2.0  # the pair was losing to the other processes: count it as a clear loss
        old = self.cost[threads]
        self.cost[threads] = per if old is None else 0.7 * old + 0.3 * per
        if self.exploring:
            other = self.cost[3 - threads]
            lost = other is not None and per > other
            self.every = min(self.every * 2, 256) if lost else 8
            self.exploring = False


def default_fp16() -> bool:
    """fp16 weights unless VQCONVERT_GEN_WEIGHTS=fp32."""
    return os.environ.get("VQCONVERT_GEN_WEIGHTS", "fp16").lower() != "fp32"


class CEngine:
    quantum = 1

    def __init__(
        self,
        lib,
        w: Weights,
        cond: Conditioner,
        n_streams: int,
        inv_temp: float = 1.0,
        greedy: bool = False,
        threads: int | None = None,
        fp16: bool | None = None,
    ) -> None:
        self.lib, self.w, self.cache = lib, w, CondCache(cond)
        self.inv_temp, self.greedy = inv_temp, greedy
        self.threads = default_threads() if threads is None else threads
        self.choice = ThreadChoice()
        self.threads_used: dict[int, int] = {}  # samples run with 1 / 2 threads
        self.fp16 = default_fp16() if fp16 is None else fp16
        wt = np.float16 if self.fp16 else np.float32

        def mat(a: torch.Tensor) -> np.ndarray:
            t = _tiles(a.numpy().astype(np.float32))
            return np.ascontiguousarray(t.astype(wt)).view(np.uint16 if self.fp16 else np.float32)

        perm = gate_perm(w.G)
        wd = torch.cat([w.w0, w.w1], dim=2)[:, perm]  # (L, G, 2R)
        self._keep = dict(
            dil=np.asarray(w.dil, dtype=np.int32),
            embed=np.ascontiguousarray(w.embed.numpy()),
            wd=mat(wd),
            wr=mat(w.wr) if w.L > 1 else np.zeros(8, np.float32),
            ws=mat(w.ws),
            br=np.ascontiguousarray(w.br.numpy()) if w.L > 1 else np.zeros(8, np.float32),
            bs=np.ascontiguousarray(w.bs.sum(0).numpy()),
            wh1=mat(w.wh1),
            bh1=np.ascontiguousarray(w.bh1.numpy()),
            wh2=mat(w.wh2),
            bh2=np.ascontiguousarray(w.bh2.numpy()),
        )
        k = self._keep
        self.model = ModelStruct(w.L, w.R, w.G, w.S, w.H, w.Q, int(self.fp16), *(_ptr(k[n]) for n in MODEL_PTRS))
        B = n_streams
        self.qstride = int(sum(w.dil)) * w.R
        self.queues = np.zeros((B, self.qstride), dtype=np.float32)
        self.prev = np.full(B, SILENCE, dtype=np.int32)
        self.tpos = np.zeros(B, dtype=np.int64)

    @staticmethod
    def cond_perm(w: Weights) -> torch.Tensor:
        perm = gate_perm(w.G)
        return torch.as_tensor(np.concatenate([layer * w.G + perm for layer in range(w.L)]), dtype=torch.long)

    def run(
        self, ids: np.ndarray, t0: int, n: int, unif: np.ndarray | None, forced: np.ndarray | None, want_logits: bool
    ):
        nb = len(ids)
        Q = self.w.Q
        ids32 = np.ascontiguousarray(ids, dtype=np.int32)
        out = np.zeros((nb, n), dtype=np.int32)
        lg_out = np.zeros((nb, n, Q), dtype=np.float32) if want_logits else None
        macs = self.w.macs_per_sample() * nb
        for a, b, cond, base, div, rows in self.cache.segments(ids, t0, n):
            c = cond.numpy()
            rows = np.ascontiguousarray(rows, dtype=np.int32)
            while a < b:
                threads, probe = (self.threads, False) if self.threads else self.choice.pick(macs)
                m = min(b - a, ThreadChoice.PROBE) if probe else b - a
                seg = slice(a - t0, a - t0 + m)
                o = np.zeros((nb, m), dtype=np.int32)
                u = None if unif is None or self.greedy else np.ascontiguousarray(unif[:, seg], np.float64)
                f = None if forced is None else np.ascontiguousarray(forced[:, seg], dtype=np.int32)
                lg = np.zeros((nb, m, Q), dtype=np.float32) if want_logits else None
                job = JobStruct(
                    nb,
                    m,
                    threads,
                    int(self.greedy),
                    self.inv_temp,
                    _ptr(ids32),
                    _ptr(self.queues),
                    self.qstride,
                    _ptr(self.prev),
                    _ptr(self.tpos),
                    _ptr(c),
                    _ptr(rows),
                    c.shape[1] * c.shape[2],
                    c.shape[2],
                    base,
                    div,
                    _ptr(u),
                    _ptr(f),
                    _ptr(lg),
                    _ptr(o),
                )
                t = time.perf_counter()
                rc = self.lib.wg_run(ctypes.byref(self.model), ctypes.byref(job))
                if rc != 0:
                    raise RuntimeError(f"C generator failed (code {rc})")
                if not self.threads:
                    self.choice.report(threads, time.perf_counter() - t, m * nb, job.solo_step)
                self.threads_used[threads] = self.threads_used.get(threads, 0) + m
                out[:, seg] = o
                if lg_out is not None:
                    lg_out[:, seg] = lg
                a += m
        return out, lg_out
