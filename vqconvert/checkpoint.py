"""One self-describing checkpoint file: format version, model config, speaker table, weights, and for
training runs the optimizer, scheduler, step, RNG state and the EMA copy of the weights. Written
atomically, loaded weights-only.

Format versions: 1 (no EMA weights); 2 adds the optional "ema" entry ({"updates", "model"}), which
inference and export prefer to the raw weights. Both are read."""

from __future__ import annotations

import hashlib
import pickle
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vqconvert.config import ModelConfig
from vqconvert.errors import CheckpointError
from vqconvert.fileio import atomic_path
from vqconvert.model import VQVAE
from vqconvert.shipped import default_model

FORMAT = "vqconvert-checkpoint"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
LATEST = "latest.pt"


@dataclass
class LoadedModel:
    model: VQVAE
    config: ModelConfig
    speakers: list[str]
    step: int
    fingerprint: str
    path: Path
    meta: dict = field(default_factory=dict)

    def speaker_index(self, name: str) -> int:
        from vqconvert.speakers import resolve_speaker

        return resolve_speaker(name, self.speakers)


def fingerprint(model: VQVAE) -> str:
    """Short hash of what gives codes their meaning: encoder and codebook (fp16-rounded, so a
    half-precision copy of a model has the same fingerprint)."""
    h = hashlib.sha256(repr((model.cfg.codebook_size, model.cfg.latent_dim, model.cfg.hop)).encode())
    tensors = dict(model.encoder.state_dict())
    tensors["codebook"] = model.quantizer.codebook
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().half().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def atomic_torch_save(obj: dict, path: Path) -> None:
    """torch.save to a temp file in the same directory, fsync, then rename over `path` (vqconvert.fileio)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(
    path: str | Path,
    model: VQVAE,
    speakers: list[str],
    *,
    step: int = 0,
    train_config: dict | None = None,
    optimizer: dict | None = None,
    scheduler: dict | None = None,
    rng: dict | None = None,
    metrics: dict | None = None,
    ema: dict | None = None,
    half: bool = False,
) -> None:
    """Write a checkpoint. `half=True` stores floating weights as fp16 (for distribution); `ema` is a
    `WeightsEMA.state_dict()` (training runs)."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in model.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "speakers": list(speakers),
        "step": int(step),
        "model": state,
        "train_config": train_config,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "rng": rng,
        "metrics": metrics or {},
    }
    if ema is not None:
        payload["ema"] = ema
    atomic_torch_save(payload, Path(path))


def resolve_model_path(path: str | Path | None = None) -> Path:
    """A checkpoint file, a run directory (its latest.pt), or the default: $VQCONVERT_MODEL, then the
    model shipped in models/."""
    if path is None or str(path) == "":
        path = default_model()
    p = Path(path)
    if p.is_dir():
        if (p / LATEST).is_file():
            return p / LATEST
        pts = sorted(p.glob("*.pt"))
        if not pts:
            raise CheckpointError(f"{p}: directory holds no checkpoint (no {LATEST} or *.pt)")
        return pts[-1]
    if not p.exists():
        raise CheckpointError(f"{p}: model file not found")
    return p


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a checkpoint dict; any problem becomes a one-line CheckpointError."""
    p = resolve_model_path(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{p}: {unpickling_reason(str(e))}") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError, struct.error) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else "file is empty or truncated"
        raise CheckpointError(f"{p}: not a readable checkpoint ({msg[:160]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a vqconvert checkpoint")
    if ckpt.get("version") not in READ_VERSIONS:
        raise CheckpointError(
            f"{p}: checkpoint format version {ckpt.get('version')} is not supported "
            f"(this vqconvert reads versions {', '.join(map(str, READ_VERSIONS))})"
        )
    for key in ("model_config", "speakers", "model", "step"):
        if key not in ckpt:
            raise CheckpointError(f"{p}: checkpoint lacks {key!r}")
    return ckpt


def unpickling_reason(message: str) -> str:
    """One line out of torch's multi-paragraph weights-only error."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", message)
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return f"refused: the file carries pickled code ({found.group(1)}); only plain weights are loaded"
    return "not a readable checkpoint (corrupt, or not a torch file)"


def build_model(ckpt: dict, use_ema: bool = True) -> VQVAE:
    """The checkpoint's model, with its EMA weights when it has them and `use_ema` (inference, export);
    `use_ema=False` gives the raw weights a run resumes from."""
    try:
        cfg = ModelConfig.from_dict(ckpt["model_config"])
        model = VQVAE(cfg)
        ema = ckpt.get("ema")
        state = ema["model"] if use_ema and isinstance(ema, dict) and "model" in ema else ckpt["model"]
        model.load_state_dict(state, strict=True)
    except (ValueError, TypeError, RuntimeError, KeyError) as e:
        msg = str(e).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint does not match its model config ({msg[:160]})") from None
    return model


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model for inference (eval mode, on `device`)."""
    p = resolve_model_path(path)
    ckpt = load_checkpoint(p)
    model = build_model(ckpt)
    model.eval()
    fp = fingerprint(model)
    model.to(device)
    meta = {k: ckpt.get(k) for k in ("train_config", "metrics")}
    return LoadedModel(model, model.cfg, list(ckpt["speakers"]), int(ckpt["step"]), fp, p, meta)


def export_checkpoint(
    source: str | Path, dest: str | Path, half: bool = True, force: bool = False
) -> tuple[dict, VQVAE]:
    """Write an inference-only copy of `source` (file or run directory) to `dest`: the EMA weights if
    the run kept them, else its weights (fp16 with `half`), config, speakers, step and metrics; no
    optimizer. Returns the source checkpoint dict and the exported model."""
    dest = Path(dest)
    if dest.exists() and not force:
        raise CheckpointError(f"{dest}: already exists (use --force to overwrite)")
    ckpt = load_checkpoint(source)
    model = build_model(ckpt)
    save_checkpoint(
        dest,
        model,
        ckpt["speakers"],
        step=ckpt["step"],
        train_config=ckpt.get("train_config"),
        metrics=ckpt.get("metrics"),
        half=half,
    )
    return ckpt, model
