"""What the conditioning network and mel head (issue 14) cost against the paper's decoder, in one run:
generation speed of the fast samplers and training step time, `small-cond` / `small` and
`small-melcond` / `small` (and the `paper` pair with --paper; any with --pair BASE:NEW). Interleaved
rounds, median of each: these machines are noisy.

    python bench/cond_overhead.py [--backend c|torch|cuda|auto] [--seconds S] [--rounds N] [--threads N]

Target (issue 14): generation no more than 10% slower (ratio <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vqconvert.config import preset
from vqconvert.generate import generate
from vqconvert.model import VQVAE
from vqconvert.sampling import SamplingOptions


def _model(name: str, device: str) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(preset(name, n_speakers=16)).to(device)


def gen_seconds(model: VQVAE, frames: int, streams: int, backend: str) -> float:
    g = torch.Generator().manual_seed(0)
    codes = [torch.randint(0, model.cfg.codebook_size, (frames,), generator=g) for _ in range(streams)]
    t = time.perf_counter()
    generate(model.eval(), codes, list(range(streams)), SamplingOptions(temperature=1.0, seed=0, backend=backend))
    return time.perf_counter() - t


def step_seconds(model: VQVAE, batch: int, crop: int) -> float:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    audio = (torch.rand(batch, crop, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.3
    audio = audio.to(next(model.parameters()).device)
    spk = torch.arange(batch, device=audio.device) % 16
    t = time.perf_counter()
    out = model(audio, spk, prev_noise=torch.full((batch,), 2.0, device=audio.device))
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()
    if audio.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seconds", type=float, default=1.0, help="audio generated per stream and round")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--paper", action="store_true", help="also the paper / paper-cond pair")
    ap.add_argument("--pair", action="append", default=[], metavar="BASE:NEW", help="presets to compare instead")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = [("small", "small-cond"), ("small", "small-melcond")] + ([("paper", "paper-cond")] if args.paper else [])
    if args.pair:
        pairs = [tuple(p.split(":", 1)) for p in args.pair]
    frames = int(args.seconds * 16000) // 64
    print(
        f"backend {args.backend}, device {args.device}, {args.streams} stream(s) x {args.seconds} s, "
        f"{args.rounds} interleaved rounds (median)"
    )
    for base, cond in pairs:
        models = {n: _model(n, args.device) for n in (base, cond)}
        gen = {n: [] for n in models}
        train = {n: [] for n in models}
        for m in models.values():  # warm-up: C build/load, allocator, first-call costs
            gen_seconds(m, 16, args.streams, args.backend)
            step_seconds(m, 2, 4096)
        for _ in range(args.rounds):
            for n, m in models.items():
                gen[n].append(gen_seconds(m, frames, args.streams, args.backend))
                train[n].append(step_seconds(m, 4, 8000))
        g = {n: statistics.median(v) for n, v in gen.items()}
        s = {n: statistics.median(v) for n, v in train.items()}
        audio = args.seconds * args.streams
        print(f"{base:>6}: generation {audio / g[base]:.2f}x real time, train step (4 x 0.5 s) {s[base]:.3f} s")
        print(f"{cond:>6}: generation {audio / g[cond]:.2f}x real time, train step (4 x 0.5 s) {s[cond]:.3f} s")
        print(
            f"ratio {cond}/{base}: generation time {g[cond] / g[base]:.3f} (target <= 1.10), "
            f"train step {s[cond] / s[base]:.3f}"
        )


if __name__ == "__main__":
    main()
