"""The prior's own small checkpoint file, beside the VQ-VAE it models (e.g. `models/X.prior.pt` for
`models/X.pt`): format tag and version, config, the speaker table it was trained with, the fingerprint and
K of the VQ-VAE whose codes it models, weights and metrics. Written atomically with
`vqconvert.companion.write_companion`, loaded with weights_only=True and strict=True; a prior is
refused with one line against a model of another fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from vqconvert.companion import companion_path, read_companion, write_companion
from vqconvert.errors import CheckpointError
from vqconvert.prior.model import CodePrior, PriorConfig

FORMAT = "vqconvert-prior"
FORMAT_VERSION = 1
SUFFIX = ".prior.pt"


class PriorError(CheckpointError):
    """A prior file that is missing, corrupt, of another model, or lacks a speaker."""


@dataclass
class LoadedPrior:
    prior: CodePrior
    speakers: list[str]
    fingerprint: str  # of the VQ-VAE it was trained on
    path: Path
    metrics: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)

    def check_model(self, loaded) -> None:
        """PriorError unless `loaded` (a LoadedModel) is the VQ-VAE this prior models."""
        if loaded.fingerprint != self.fingerprint or loaded.config.codebook_size != self.prior.cfg.codebook_size:
            raise PriorError(
                f"{self.path}: prior was trained on the codes of model {self.fingerprint}, not of "
                f"{loaded.path} ({loaded.fingerprint}); train one with `vqconvert train-prior`"
            )

    def speaker_index(self, name: str) -> int:
        if name not in self.speakers:
            raise PriorError(
                f"the prior knows no speaker {name!r} (it was trained on {len(self.speakers)}: "
                f"{', '.join(self.speakers[:6])}{', ...' if len(self.speakers) > 6 else ''})"
            )
        return self.speakers.index(name)


def default_prior_path(model_path: str | Path) -> Path:
    """`models/X.pt` -> `models/X.prior.pt`; a run directory's latest.pt -> latest.prior.pt beside it."""
    return companion_path(model_path, SUFFIX)


def save_prior(
    path: str | Path,
    prior: CodePrior,
    speakers: list[str],
    fingerprint: str,
    *,
    metrics: dict | None = None,
    train: dict | None = None,
) -> None:
    fields = {
        "prior_config": prior.cfg.to_dict(),
        "speakers": list(speakers),
        "vqvae_fingerprint": str(fingerprint),
        "codebook_size": int(prior.cfg.codebook_size),
        "model": {k: v.detach().cpu() for k, v in prior.state_dict().items()},
        "metrics": metrics or {},
        "train": train or {},
    }
    write_companion(path, FORMAT, FORMAT_VERSION, fields)


def load_prior(path: str | Path, device: str | torch.device = "cpu") -> LoadedPrior:
    p = Path(path)
    ckpt = read_companion(p, FORMAT, FORMAT_VERSION, "prior", PriorError, "train one with `vqconvert train-prior`")
    try:
        cfg = PriorConfig.from_dict(ckpt["prior_config"])
        prior = CodePrior(cfg)
        prior.load_state_dict(ckpt["model"], strict=True)
        speakers = [str(s) for s in ckpt["speakers"]]
        fp = str(ckpt["vqvae_fingerprint"])
    except (ValueError, TypeError, RuntimeError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PriorError(f"{p}: prior does not match its config ({msg[:160]})") from None
    if len(speakers) != cfg.n_speakers:
        raise PriorError(f"{p}: prior lists {len(speakers)} speakers but has {cfg.n_speakers} embeddings")
    return LoadedPrior(
        prior.to(device).eval(), speakers, fp, p, dict(ckpt.get("metrics") or {}), dict(ckpt.get("train") or {})
    )
