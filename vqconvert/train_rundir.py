"""A training run's directory: `latest.pt` (everything a resume needs: weights, optimizer, scheduler, step,
torch RNG, weights EMA), `step_NNNNNNN.pt` kept copies, `log.jsonl` (one JSON row per logged step,
validation or probe), `speakers.txt` and `config.json` (the train and model configs, so that the log can
be read without the checkpoint). Only the main process writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from vqconvert.checkpoint import LATEST, load_checkpoint, save_checkpoint
from vqconvert.config import TrainConfig
from vqconvert.ema import WeightsEMA
from vqconvert.fileio import atomic_path
from vqconvert.model import VQVAE

CONFIG = "config.json"


def write_config(path: Path, train_config: dict, model_config: dict) -> None:
    """`path`/config.json: {"train_config": ..., "model_config": ...}, written atomically."""
    with atomic_path(path / CONFIG, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"train_config": train_config, "model_config": model_config}, indent=1) + "\n")


class RunDir:
    """The files of the run in `path`; `main` is False on the other torchrun processes (no writes)."""

    def __init__(self, path: Path, main: bool = True, log: Callable[[str], None] = print) -> None:
        self.path, self.main, self.log = Path(path), main, log

    @property
    def latest(self) -> Path:
        return self.path / LATEST

    def logged_rows(self) -> int:
        path = self.path / "log.jsonl"
        return sum(1 for x in path.read_text().splitlines() if x.strip()) if path.exists() else 0

    def check_start(self, resume: bool, force: bool) -> str | None:
        """Why training may not start here (None: it may): a fresh start would replace a run's latest.pt
        and log, and a resume without latest.pt would start afresh and drop the log. `force` allows both."""
        if force:
            return None
        rows = self.logged_rows()
        if not resume and (self.latest.exists() or rows):
            return f"{self.path} holds a run: --resume to continue it, --force to start afresh, or a new --run-dir"
        if resume and rows and not self.latest.exists():
            return (
                f"{self.path} has a log of {rows} rows but no {LATEST} to resume from: restore it, or --force "
                "to start afresh (the log is dropped)"
            )
        return None

    def latest_checkpoint(self) -> dict | None:
        """The checkpoint a resume continues from (None when the directory holds none)."""
        return load_checkpoint(self.latest) if self.latest.exists() else None

    def start(self, speakers: list[str], step: int, cfg: TrainConfig, model: VQVAE) -> None:
        """Before training from `step`: the directory, speakers.txt, config.json, a log without later rows."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.main:
            (self.path / "speakers.txt").write_text("\n".join(speakers) + "\n")
            write_config(self.path, cfg.to_dict(), model.cfg.to_dict())
            self.trim_log(step)

    def trim_log(self, step: int) -> None:
        """Drop log rows of steps after `step`: a run killed between checkpoints logged steps that are
        trained again now (a fresh start in an old run directory keeps none)."""
        path = self.path / "log.jsonl"
        if not path.exists():
            return
        lines = path.read_text().splitlines()
        keep = [x for x in lines if x.strip() and json.loads(x).get("step", 0) <= step]
        if len(keep) != len(lines):
            with atomic_path(path, overwrite=True) as tmp:
                tmp.write_text("".join(x + "\n" for x in keep))
            self.log(f"log.jsonl: dropped {len(lines) - len(keep)} rows after step {step} (not checkpointed)")

    def log_row(self, row: dict) -> None:
        """Append one row to log.jsonl."""
        if self.main:
            with open(self.path / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    def save(
        self,
        model: VQVAE,
        speakers: list[str],
        *,
        step: int,
        cfg: TrainConfig,
        opt: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler,
        ema: WeightsEMA | None,
        metrics: dict | None = None,
        tag: str | None = None,
    ) -> Path | None:
        """Write latest.pt (and `tag`.pt) with all a resume needs; the path of latest.pt (None off main)."""
        if not self.main:
            return None
        kwargs = dict(
            step=step,
            train_config=cfg.to_dict(),
            optimizer=opt.state_dict(),
            scheduler=sched.state_dict(),
            rng={"torch": torch.get_rng_state()},
            metrics=metrics,
            ema=ema.state_dict() if ema is not None else None,
        )
        save_checkpoint(self.latest, model, speakers, **kwargs)
        if tag:
            save_checkpoint(self.path / f"{tag}.pt", model, speakers, **kwargs)
        return self.latest


def restore(ckpt: dict, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler) -> int:
    """Load the optimizer, the scheduler and the torch RNG of `ckpt` (from `RunDir.save`); its step."""
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    if ckpt.get("rng"):
        torch.set_rng_state(ckpt["rng"]["torch"])
    return int(ckpt["step"])
