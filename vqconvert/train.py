"""Training loop: memory-mapped crops, AdamW with warmup + cosine, validation, atomic resumable
checkpoints, Ctrl-C safety, NaN guard, and DistributedDataParallel under torchrun."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqconvert.augment import encoder_input, pitch_perturbed, prev_noise_scales
from vqconvert.checkpoint import LATEST, build_model, load_checkpoint, save_checkpoint
from vqconvert.config import HOP, TrainConfig, preset
from vqconvert.data.cache import AudioCache, load_or_build_cache
from vqconvert.data.corpus import split_utterances
from vqconvert.data.dataset import CropDataset, sampling_indices
from vqconvert.devices import resolve_device
from vqconvert.ema import WeightsEMA
from vqconvert.errors import VQConvertError
from vqconvert.fileio import atomic_path
from vqconvert.model import VQVAE
from vqconvert.validation import validate


class TrainingError(VQConvertError):
    """Training cannot go on (non-finite loss, mismatched resume)."""


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, d: Dist) -> torch.device:
    """`vqconvert.devices.resolve_device`, with each torchrun process on its own GPU."""
    name = resolve_device(name)
    if name == "cuda" and d.world > 1:
        name = f"cuda:{d.local_rank}"
    return torch.device(name)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def autocast_for(cfg: TrainConfig, device: torch.device):
    amp = cfg.amp
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if amp != "off":
        raise TrainingError(f"unknown amp mode {cfg.amp!r}: use auto, bf16 or off")
    return nullcontext()


class Trainer:
    """One training run in `cfg.run_dir`. `run()` trains to `cfg.steps` and returns the final step."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, log=print, progress: bool = True) -> None:
        self.cfg, self.log, self.progress = cfg, log, progress
        self.run_dir = Path(cfg.run_dir)
        self.dist = setup_distributed(cfg.device)
        self.device = pick_device(cfg.device, self.dist)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.dist.world)))
        if self.device.type == "cpu":
            torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local_world))
        self.cache = self._cache()
        ckpt = self._resume_checkpoint() if resume else None
        speakers = self.cache.speakers
        if ckpt is not None and list(ckpt["speakers"]) != list(speakers):
            raise TrainingError("the corpus's speakers differ from the checkpoint's: resume with the same data")
        self.speakers = list(speakers)
        self.spk_index = {s: i for i, s in enumerate(self.speakers)}
        holdout = tuple(cfg.holdout) + tuple(cfg.probe)  # probe clips are never trained on
        train_ix, val_ix = split_utterances(self.cache.utterances, cfg.val_fraction, holdout=holdout)
        self.train_ix = [self._pos[id(u)] for u in train_ix]
        self.val_ix = [self._pos[id(u)] for u in val_ix]
        self.crop = int(round(cfg.crop_seconds * self.cache.sample_rate / HOP)) * HOP
        visits = sampling_indices(self.cache, self.train_ix, cfg.sample_by)
        self.train_set = CropDataset(self.cache, visits, self.crop, self.spk_index, seed=cfg.seed)

        torch.manual_seed(cfg.seed)
        if ckpt is not None:
            self.model = build_model(ckpt, use_ema=False).to(self.device)
        else:
            self.model = VQVAE(preset(cfg.preset, n_speakers=len(self.speakers), ema=cfg.ema)).to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, cfg))
        self.step = 0
        if ckpt is not None:
            self.opt.load_state_dict(ckpt["optimizer"])
            self.sched.load_state_dict(ckpt["scheduler"])
            self.step = int(ckpt["step"])
            if ckpt.get("rng"):
                torch.set_rng_state(ckpt["rng"]["torch"])
        self.ema = WeightsEMA(self.model, cfg.weights_ema) if cfg.weights_ema > 0 else None
        if self.ema is not None and ckpt is not None and ckpt.get("ema"):
            self.ema.load_state_dict(ckpt["ema"])
        self.probe = None
        if cfg.probe and cfg.probe_every > 0 and self.dist.main:
            from vqconvert.probe import Probe, probe_clips

            clips = probe_clips(self.cache, cfg.probe, self.spk_index, cfg.probe_seconds)
            self.probe = Probe(clips, self.cache.sample_rate)
        self.net = self.model
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
        if cfg.compile:
            self.net = torch.compile(self.net)
        self._stop = False

    def _cache(self) -> AudioCache:
        if not self.cfg.data:
            raise TrainingError("no training data given")
        if self.dist.main:
            cache = load_or_build_cache(self.cfg.data, self.cfg.cache_dir, progress=self.progress)
        if self.dist.world > 1:
            torch.distributed.barrier()
        if not self.dist.main:
            cache = load_or_build_cache(self.cfg.data, self.cfg.cache_dir, progress=False)
        self._pos = {id(u): i for i, u in enumerate(cache.utterances)}
        return cache

    def _resume_checkpoint(self) -> dict | None:
        path = self.run_dir / LATEST
        if not path.exists():
            self.log(f"no checkpoint in {self.run_dir}: starting a new run")
            return None
        ckpt = load_checkpoint(path)
        if ckpt.get("optimizer") is None:
            raise TrainingError(f"{path} holds no optimizer state (a distribution copy?): cannot resume")
        self.log(f"resuming {path} at step {ckpt['step']}")
        return ckpt

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch for `step` and this rank: a pure function of (seed, step, rank), so resume is exact."""
        b = self.cfg.batch_size
        base = (step * self.dist.world + self.dist.rank) * b
        items = [self.train_set[base + j] for j in range(b)]
        audio = torch.stack([a for a, _ in items]).to(self.device)
        spk = torch.stack([s for _, s in items]).to(self.device)
        return audio, spk

    def save(self, tag: str | None = None, metrics: dict | None = None) -> Path | None:
        if not self.dist.main:
            return None
        rng = {"torch": torch.get_rng_state()}
        kwargs = dict(
            step=self.step,
            train_config=self.cfg.to_dict(),
            optimizer=self.opt.state_dict(),
            scheduler=self.sched.state_dict(),
            rng=rng,
            metrics=metrics,
            ema=self.ema.state_dict() if self.ema is not None else None,
        )
        path = self.run_dir / LATEST
        save_checkpoint(path, self.model, self.speakers, **kwargs)
        if tag:
            save_checkpoint(self.run_dir / f"{tag}.pt", self.model, self.speakers, **kwargs)
        return path

    @property
    def eval_model(self) -> VQVAE:
        """The weights that are validated, probed and exported: the EMA copy when the run keeps one."""
        return self.ema.shadow if self.ema is not None else self.model

    def validate(self) -> dict:
        """Teacher-forced metrics of `eval_model` over fixed held-out crops (vqconvert.validation)."""
        if not self.val_ix:
            return {}
        rng = np.random.default_rng(12345)
        ix = rng.choice(
            self.val_ix, size=min(len(self.val_ix), self.cfg.val_batches * self.cfg.batch_size), replace=False
        )
        val_set = CropDataset(self.cache, list(ix), self.crop, self.spk_index, seed=999, shuffle=False)

        def batches():
            for start in range(0, len(ix), self.cfg.batch_size):
                items = [val_set[j] for j in range(start, min(len(ix), start + self.cfg.batch_size))]
                yield torch.stack([a for a, _ in items]).to(self.device), torch.stack([s for _, s in items]).to(
                    self.device
                )

        model = self.eval_model
        try:
            return validate(model, batches(), len(self.speakers), lambda: autocast_for(self.cfg, self.device))
        finally:
            if model is self.model:
                model.train()

    def _trim_log(self) -> None:
        """Drop log rows of steps after the one this run starts from: a run killed between checkpoints
        logged steps that are trained again now (a fresh start in an old run directory keeps none)."""
        path = self.run_dir / "log.jsonl"
        if not path.exists():
            return
        lines = path.read_text().splitlines()
        keep = [x for x in lines if x.strip() and json.loads(x).get("step", 0) <= self.step]
        if len(keep) != len(lines):
            with atomic_path(path, overwrite=True) as tmp:
                tmp.write_text("".join(x + "\n" for x in keep))
            self.log(f"log.jsonl: dropped {len(lines) - len(keep)} rows after step {self.step} (not checkpointed)")

    def _log_row(self, row: dict) -> None:
        if self.dist.main:
            with open(self.run_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    def _on_signal(self, signum, frame) -> None:
        if self._stop and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self._stop = True

    def run(self, until: int | None = None) -> int:
        """Train to `cfg.steps` (or stop early at step `until`, saving a checkpoint there)."""
        cfg = self.cfg
        last_step = min(cfg.steps, until) if until is not None else cfg.steps
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.main:
            (self.run_dir / "speakers.txt").write_text("\n".join(self.speakers) + "\n")
            self._trim_log()
        # The first Ctrl-C / SIGTERM lets the current step finish, then saves and stops.
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.model.train()
        t_last, cpu_last, audio_s, last_val = time.perf_counter(), time.process_time(), 0.0, {}
        from vqconvert.train_progress import TrainProgress

        bar = TrainProgress(cfg.steps, self.step, enabled=self.progress and self.dist.main)
        try:
            with bar:
                while self.step < last_step and not self._stop:
                    out = self._train_step()
                    self.step += 1
                    audio_s += cfg.batch_size * self.dist.world * self.crop / self.cache.sample_rate
                    row = {
                        "step": self.step,
                        "loss": float(out.loss.detach()),
                        "bits": out.bits,
                        "codebook": float(out.codebook.detach()),
                        "commitment": float(out.commitment.detach()),
                        "perplexity": float(out.perplexity),
                        "used": int(out.used),
                        "lr": self.sched.get_last_lr()[0],
                    }
                    if out.mel is not None:
                        row["mel"] = float(out.mel.detach())
                    if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        dt = time.perf_counter() - t_last
                        row["audio_s_per_s"] = audio_s / max(dt, 1e-9)
                        # Process CPU time (all threads) since the last row: budgets compare in CPU hours.
                        row["cpu_s"] = time.process_time() - cpu_last
                        t_last, cpu_last, audio_s = time.perf_counter(), time.process_time(), 0.0
                        self._log_row(row)
                    if cfg.validate_every and self.step % cfg.validate_every == 0:
                        last_val = self.validate()
                        self._log_row({"step": self.step, **last_val})
                        self.log(f"step {self.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in last_val.items()))
                    if self.probe is not None and self.step % cfg.probe_every == 0:
                        self._run_probe()
                    bar.update(self.step, row, last_val)
                    if self.step % cfg.checkpoint_every == 0 or self.step == last_step:
                        keep = cfg.keep_every and self.step % cfg.keep_every == 0
                        self.save(f"step_{self.step:07d}" if keep else None, last_val)
        except KeyboardInterrupt:
            self._stop = True
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if self._stop:
            path = self.save(metrics=last_val)
            if path:
                self.log(f"interrupted: saved step {self.step} to {path}; continue with --resume")
        return self.step

    def perturbed(self, audio: torch.Tensor, step: int) -> torch.Tensor | None:
        """(B, T) batch -> pitch-shifted copy for the encoder, or None when perturbation is off."""
        return pitch_perturbed(audio, self.cfg, step, self.dist.rank, self.cache.sample_rate)

    def _run_probe(self) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        found = self.probe.run(self.eval_model)
        found["probe_seconds"] = time.perf_counter() - t0
        found["probe_cpu_s"] = time.process_time() - c0
        self._log_row({"step": self.step, **found})
        shown = {k: v for k, v in found.items() if v is not None and ("wer" in k or "stoi" in k)}
        self.log(f"step {self.step} probe: " + ", ".join(f"{k[6:]} {v:.2f}" for k, v in shown.items()))

    def _train_step(self):
        audio, spk = self.batch(self.step)
        enc_in = encoder_input(audio, self.cfg, self.step, self.dist.rank, self.cache.sample_rate)
        noise = prev_noise_scales(self.cfg, audio.shape[0], self.step, self.dist.rank)
        noise = noise.to(self.device) if noise is not None else None
        with autocast_for(self.cfg, self.device):
            out = self.net(audio, spk, enc_in, noise)
        if not torch.isfinite(out.loss):
            last = self.run_dir / LATEST
            where = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
            raise TrainingError(
                f"loss became {float(out.loss.detach())} at step {self.step + 1}; stopped without "
                f"saving ({where}; try a lower --lr)"
            )
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return out
