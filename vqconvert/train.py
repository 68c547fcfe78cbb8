"""Training loop: AdamW with warmup + cosine, validation, probes, Ctrl-C safety, NaN guard, and
DistributedDataParallel under torchrun. The data of a run is `vqconvert.train_data`, its files
(resumable checkpoints, log) `vqconvert.train_rundir`."""

from __future__ import annotations

import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from vqconvert.augment import encoder_input, pitch_perturbed, prev_noise_scales, true_mel_mask
from vqconvert.checkpoint import build_model
from vqconvert.config import TrainConfig, preset
from vqconvert.devices import resolve_device
from vqconvert.ema import WeightsEMA
from vqconvert.errors import VQConvertError
from vqconvert.frozen_codes import copy_codes, freeze_codes
from vqconvert.model import VQVAE
from vqconvert.train_data import TrainData
from vqconvert.train_rundir import RunDir, restore
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

    def __init__(
        self, cfg: TrainConfig, resume: bool = False, log=print, progress: bool = True, force: bool = False
    ) -> None:
        self.cfg, self.log, self.progress = cfg, log, progress
        self.run_dir = Path(cfg.run_dir)
        self.files = RunDir(self.run_dir, True, log)
        refusal = self.files.check_start(resume, force)
        if refusal:
            raise TrainingError(refusal)
        self.dist = setup_distributed(cfg.device)
        self.files = RunDir(self.run_dir, self.dist.main, log)
        self.device = pick_device(cfg.device, self.dist)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.dist.world)))
        if self.device.type == "cpu":
            torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local_world))
        if not cfg.data:
            raise TrainingError("no training data given")
        self.data = TrainData(cfg, self.device, self.dist.rank, self.dist.world, progress)
        ckpt = self._resume_checkpoint() if resume else None
        self.speakers = self.data.speakers
        if ckpt is not None and list(ckpt["speakers"]) != self.speakers:
            raise TrainingError("the corpus's speakers differ from the checkpoint's: resume with the same data")

        torch.manual_seed(cfg.seed)
        if ckpt is not None:
            self.model = build_model(ckpt, use_ema=False).to(self.device)
        else:
            self.model = VQVAE(preset(cfg.preset, n_speakers=len(self.speakers), ema=cfg.ema)).to(self.device)
            if cfg.codes_from:
                fp = copy_codes(self.model, cfg.codes_from)
                self.log(f"encoder and codebook from {cfg.codes_from} (fingerprint {fp}), frozen")
        if cfg.codes_from:
            freeze_codes(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, cfg))
        self.step = restore(ckpt, self.opt, self.sched) if ckpt is not None else 0
        self.ema = WeightsEMA(self.model, cfg.weights_ema) if cfg.weights_ema > 0 else None
        if self.ema is not None and ckpt is not None and ckpt.get("ema"):
            self.ema.load_state_dict(ckpt["ema"])
        self.probe = None
        if cfg.probe and cfg.probe_every > 0 and self.dist.main:
            from vqconvert.probe import Probe, probe_clips

            clips = probe_clips(self.data.cache, cfg.probe, self.data.spk_index, cfg.probe_seconds)
            self.probe = Probe(clips, self.data.cache.sample_rate)
        self.net = self.model
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
        if cfg.compile:
            self.net = torch.compile(self.net)
        self._stop = False

    def _resume_checkpoint(self) -> dict | None:
        ckpt = self.files.latest_checkpoint()
        if ckpt is None:
            self.log(f"no checkpoint in {self.run_dir}: starting a new run")
        elif ckpt.get("optimizer") is None:
            raise TrainingError(f"{self.files.latest} holds no optimizer state (a distribution copy?): cannot resume")
        else:
            self.log(f"resuming {self.files.latest} at step {ckpt['step']}")
        return ckpt

    def save(self, tag: str | None = None, metrics: dict | None = None) -> Path | None:
        """Checkpoint the run (`RunDir.save`): latest.pt, and `tag`.pt when given."""
        return self.files.save(
            self.model,
            self.speakers,
            step=self.step,
            cfg=self.cfg,
            opt=self.opt,
            sched=self.sched,
            ema=self.ema,
            metrics=metrics,
            tag=tag,
        )

    @property
    def eval_model(self) -> VQVAE:
        """The weights that are validated, probed and exported: the EMA copy when the run keeps one."""
        return self.ema.shadow if self.ema is not None else self.model

    def validate(self) -> dict:
        """Teacher-forced metrics of `eval_model` over fixed held-out crops (vqconvert.validation)."""
        if not self.data.val_ix:
            return {}
        model = self.eval_model
        try:
            return validate(
                model, self.data.val_batches(), len(self.speakers), lambda: autocast_for(self.cfg, self.device)
            )
        finally:
            if model is self.model:
                model.train()

    def _on_signal(self, signum, frame) -> None:
        if self._stop and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self._stop = True

    def run(self, until: int | None = None) -> int:
        """Train to `cfg.steps` (or stop early at step `until`, saving a checkpoint there)."""
        cfg = self.cfg
        last_step = min(cfg.steps, until) if until is not None else cfg.steps
        self.files.start(self.speakers, self.step, self.cfg, self.model)
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
                    audio_s += self.data.seconds_per_step
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
                        self.files.log_row(row)
                    if cfg.validate_every and self.step % cfg.validate_every == 0:
                        last_val = self.validate()
                        self.files.log_row({"step": self.step, **last_val})
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
        return pitch_perturbed(audio, self.cfg, step, self.dist.rank, self.data.cache.sample_rate)

    def _run_probe(self) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        found = self.probe.run(self.eval_model)
        found["probe_seconds"] = time.perf_counter() - t0
        found["probe_cpu_s"] = time.process_time() - c0
        self.files.log_row({"step": self.step, **found})
        shown = {k: v for k, v in found.items() if v is not None and ("wer" in k or "stoi" in k)}
        self.log(f"step {self.step} probe: " + ", ".join(f"{k[6:]} {v:.2f}" for k, v in shown.items()))

    def _train_step(self):
        audio, spk = self.data.batch(self.step)
        enc_in = encoder_input(audio, self.cfg, self.step, self.dist.rank, self.data.cache.sample_rate)
        noise = prev_noise_scales(self.cfg, audio.shape[0], self.step, self.dist.rank)
        noise = noise.to(self.device) if noise is not None else None
        use_true = true_mel_mask(self.cfg, audio.shape[0], self.step, self.dist.rank)
        use_true = use_true.to(self.device) if use_true is not None else None
        with autocast_for(self.cfg, self.device):
            out = self.net(audio, spk, enc_in, noise, use_true)
        if not torch.isfinite(out.loss):
            last = self.files.latest
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
