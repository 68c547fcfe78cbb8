"""Training throughput (audio seconds per wall second) per preset, device and precision, in one run.

    python bench/train.py [--quick] [--device cpu|cuda|auto] [--threads N]

Random audio and speakers (throughput does not depend on content); steps are timed after a warm-up.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from vqconvert.config import preset
from vqconvert.model import VQVAE

SHAPES = {"tiny": (4, 4096), "small": (4, 8000), "paper": (2, 4096)}


def measure(name: str, device: str, amp: str, steps: int, batch: int, crop: int) -> float:
    torch.manual_seed(0)
    model = VQVAE(preset(name, n_speakers=16)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    audio = ((torch.rand(batch, crop) * 2 - 1) * 0.3).to(device)
    spk = torch.randint(0, 16, (batch,)).to(device)
    ctx = torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if amp == "bf16" else nullcontext()

    def step() -> None:
        with ctx:
            out = model(audio, spk)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / steps
    return batch * crop / 16000 / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one timed step per row")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all cores)")
    ap.add_argument("--presets", default="tiny,small,paper")
    args = ap.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = 1 if args.quick else 3
    print(f"device {device}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"{'preset':<8}{'params':>12}{'batch x crop':>16}{'amp':>6}{'audio s/s':>12}")
    for name in args.presets.split(","):
        batch, crop = SHAPES[name]
        if device.startswith("cuda"):
            batch, crop = batch * 8, crop * 2
        params = VQVAE(preset(name, n_speakers=16)).num_parameters()["total"]
        for amp in ("off", "bf16"):
            rate = measure(name, device, amp, steps, batch, crop)
            print(f"{name:<8}{params:>12,}{f'{batch} x {crop}':>16}{amp:>6}{rate:>12.3f}")


if __name__ == "__main__":
    main()
