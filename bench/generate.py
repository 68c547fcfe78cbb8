"""Generation speed, one table: for tiny / small / paper (random weights),
  (a) naive: full teacher-forced recompute of the receptive field per sample (a few samples),
  (b) eager torch incremental, batch 1 (backend "torch"),
  (c) fast CPU (backend "c", fp16 weights, automatic threads), batch 1,
  (d) fast CPU, batch 8, aggregate,
  (e)/(f) CUDA graphs, batch 1 / batch 64 (when a GPU is present),
plus FLOPs per sample (2 x multiply-accumulates of one step, conditioning excluded), the share of this
CPU's measured fp32 matmul peak that (c) reaches, and the encoder's speed (x real time).

RTF = seconds of compute per second of 16 kHz audio (< 1 is faster than real time); "x RT" for
batches = seconds of audio produced per second, all streams together.  Torch runs with 1 thread except
where a row says otherwise (on a shared machine 2 OpenMP threads can be far slower).  The load average
is printed: other processes on the cores slow everything down.

    python bench/generate.py [--quick] [--presets tiny,small,paper]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from naive import naive_generate  # bench/naive.py (this script's directory is on sys.path)

from vqconvert.config import SAMPLE_RATE, preset
from vqconvert.generate import available_backends, clib, generate
from vqconvert.generate._core import Weights
from vqconvert.model import VQVAE
from vqconvert.sampling import SamplingOptions

# seconds of audio per measurement: full run, --quick
DUR = {
    "naive": {"tiny": (200, 50), "small": (24, 8), "paper": (3, 1)},  # samples
    "torch": {"tiny": (0.5, 0.128), "small": (0.25, 0.064), "paper": (0.064, 0.032)},
    "c1": {"tiny": (4.0, 1.0), "small": (4.0, 1.0), "paper": (0.5, 0.128)},
    "c8": {"tiny": (2.0, 0.5), "small": (1.0, 0.256), "paper": (0.128, 0.064)},
    "cuda1": {"tiny": (1.0, 0.25), "small": (1.0, 0.25), "paper": (0.5, 0.128)},
    "cuda64": {"tiny": (1.0, 0.25), "small": (1.0, 0.25), "paper": (0.5, 0.128)},
}


def peak_gflops(threads: int, n: int = 2048, reps: int = 6) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    torch.set_num_threads(1)
    return 2 * n**3 / best / 1e9


def codes_for(model: VQVAE, seconds: float, batch: int) -> list[torch.Tensor]:
    frames = max(1, int(round(seconds * SAMPLE_RATE / model.cfg.hop)))
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, model.cfg.codebook_size, (frames,), generator=g) for _ in range(batch)]


def timed_generate(model, seconds: float, batch: int, backend: str, **opts) -> tuple[float, float]:
    """-> (samples per second, all streams together; CPU seconds of this process per sample)."""
    codes = codes_for(model, seconds, batch)
    warm = codes_for(model, 0.008, batch)
    sampling = SamplingOptions(temperature=1.0, seed=0, backend=backend, **opts)
    generate(model, warm, [0] * batch, sampling)  # build, caches
    if backend == "cuda":
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    out = generate(model, codes, [0] * batch, sampling)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    n = sum(o.numel() for o in out)
    return n / dt, dc / n


def encoder_speed(model: VQVAE, threads: int, seconds: float = 10.0) -> float:
    torch.set_num_threads(threads)
    x = torch.rand(1, int(seconds * SAMPLE_RATE) // 64 * 64) * 2 - 1
    with torch.no_grad():
        model.encoder(x[:, :6400])
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            model.encoder(x)
            best = min(best, time.perf_counter() - t)
    torch.set_num_threads(1)
    return seconds / best


def bench_preset(
    name: str, q: int, quick: bool, have_c: bool, have_cuda: bool, peak1: float, peakn: float, cores: int
) -> str | None:
    """Print the rows of one preset; return its summary line."""
    torch.manual_seed(0)
    model = VQVAE(preset(name)).eval()
    w = Weights.from_model(model)
    flops = 2 * w.macs_per_sample()
    res: dict[str, float] = {}

    def row(key: str, label: str, sps: float, cpu: float, streams: int = 1) -> None:
        """sps: samples/s (all streams); cpu: CPU seconds per sample, all threads of this process
        (the "cpu RTF" column ignores time the cores spent on other processes)."""
        res[key] = sps
        rtf = SAMPLE_RATE * streams / sps
        gf = sps * flops / 1e9
        print(
            f"{name:<6} {label:<42} {sps:>10.0f} {rtf:>8.3f} {cpu * SAMPLE_RATE * streams:>8.3f} "
            f"{sps / SAMPLE_RATE:>7.3f} {gf:>7.2f} {100 * gf / peak1:>6.1f}%",
            flush=True,
        )

    print(
        f"{name:<6} {w.L} layers, R{w.R} G{w.G} S{w.S} H{w.H}; receptive field "
        f"{model.cfg.receptive_field}; {flops / 1e6:.2f} MFLOP/sample; weights "
        f"{w.macs_per_sample() * 2 / 1e6:.2f} MB as fp16"
    )
    n = DUR["naive"][name][q]
    rf = model.cfg.receptive_field
    codes = codes_for(model, (rf + n) / SAMPLE_RATE + 0.004, 1)[0]
    hist = np.random.default_rng(0).integers(0, 256, rf)  # steady state: a full receptive field
    naive_generate(model, codes, 0, 1, history=hist)
    t, c = time.perf_counter(), time.process_time()
    naive_generate(model, codes, 0, n, history=hist)
    row(
        "a", f"(a) naive recompute, batch 1 ({n} samples)", n / (time.perf_counter() - t), (time.process_time() - c) / n
    )
    row("b", "(b) eager torch incremental, batch 1", *timed_generate(model, DUR["torch"][name][q], 1, "torch"))
    if have_c:
        c1 = DUR["c1"][name][q]
        row("c", "(c) fast C fp16, batch 1, auto threads", *timed_generate(model, c1, 1, "c"))
        if name == "small" and not quick:
            row(
                "c32",
                "(c1) fast C fp32 weights, batch 1, 1 thread",
                *timed_generate(model, c1, 1, "c", fp16=False, threads=1),
            )
            row("c1t", "(c2) fast C fp16, batch 1, 1 thread", *timed_generate(model, c1, 1, "c", threads=1))
            row("c2t", "(c3) fast C fp16, batch 1, 2 threads forced", *timed_generate(model, c1, 1, "c", threads=2))
        c8 = DUR["c8"][name][q]
        sps, cpu = timed_generate(model, c8, 8, "c")
        row("d", "(d) fast C fp16, batch 8 aggregate, auto thr.", sps, cpu, 8)
        if name == "small" and not quick:
            sps, cpu = timed_generate(model, c8, 8, "c", threads=1)
            row("d1t", "(d1) fast C fp16, batch 8 aggregate, 1 thr.", sps, cpu, 8)
            sps, cpu = timed_generate(model, c8, 8, "c", threads=2)
            row("d2t", "(d2) fast C fp16, batch 8 aggr., 2 thr. forced", sps, cpu, 8)
    if have_cuda:
        m = model.cuda()
        row("e", "(e) CUDA graphs, batch 1", *timed_generate(m, DUR["cuda1"][name][q], 1, "cuda"))
        sps, cpu = timed_generate(m, DUR["cuda64"][name][q], 64, "cuda")
        row("f", "(f) CUDA graphs, batch 64 aggregate", sps, cpu, 64)
        model = m.cpu()
    e1 = encoder_speed(model, 1, 10.0 if not quick else 2.0)
    en = encoder_speed(model, cores, 10.0 if not quick else 2.0)
    print(f"{name:<6} {'encoder (model.encoder), x real time':<42} 1 thread: {e1:.0f}x, {cores} threads: {en:.0f}x")
    if "c" in res:
        pct1 = 100 * res["c"] * flops / 1e9 / peak1
        pctn = 100 * res["c"] * flops / 1e9 / peakn
        return (
            f"{name}: c/b = {res['c'] / res['b']:.1f}x, c/a = {res['c'] / res['a']:.0f}x; "
            f"(c) reaches {pct1:.1f}% of the 1-thread and {pctn:.1f}% of the {cores}-thread "
            f"matmul peak" + (f"; (d)/(c) = {res['d'] / res['c']:.1f}x" if "d" in res else "")
        )
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short measurements (noisier)")
    ap.add_argument("--presets", default="tiny,small,paper")
    args = ap.parse_args()
    q = 1 if args.quick else 0
    torch.set_num_threads(1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    t_start = time.perf_counter()
    have_c = clib.load() is not None
    have_cuda = torch.cuda.is_available()
    print(
        f"backends: {', '.join(available_backends())}; cores: {cores}; "
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    peak1 = peak_gflops(1)
    peakn = peak_gflops(cores)
    print(f"fp32 matmul peak (torch 2048^3): {peak1:.1f} GFLOP/s with 1 thread, {peakn:.1f} with {cores}")
    print()
    head = (
        f"{'preset':<6} {'row':<42} {'samples/s':>10} {'RTF':>8} {'cpu RTF':>8} {'x RT':>7} "
        f"{'GFLOP/s':>7} {'%peak1':>7}"
    )
    print(head)
    print("-" * len(head))
    summary = []
    for name in args.presets.split(","):
        line = bench_preset(name, q, args.quick, have_c, have_cuda, peak1, peakn, cores)
        if line:
            summary.append(line)
        print("-" * len(head))
    for s in summary:
        print(s)
    print(
        f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )


if __name__ == "__main__":
    main()
