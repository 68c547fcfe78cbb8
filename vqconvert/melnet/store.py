"""The mel net's own small file beside the VQ-VAE whose codes it reads (`models/X.mel.pt` for
`models/X.pt`): format tag and version, config, the VQ-VAE's speaker table (indices are shared) and the
speakers it was trained on, the VQ-VAE's fingerprint, weights, metrics and training settings. Written
atomically, read weights-only and strict; refused with one line against a model of another fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from vqconvert.companion import companion_path, read_companion, write_companion
from vqconvert.errors import CheckpointError
from vqconvert.melnet.model import CodeMelNet, MelNetConfig

FORMAT = "vqconvert-melnet"
FORMAT_VERSION = 1
SUFFIX = ".mel.pt"
HINT = "train one with `vqconvert train-mel`"


class MelNetError(CheckpointError):
    """A mel net file that is missing, corrupt, of another model, or lacks a speaker."""


@dataclass
class LoadedMelNet:
    net: CodeMelNet
    speakers: list[str]  # the VQ-VAE's speaker table when it was trained (index = embedding row)
    trained: list[str]  # the speakers it has seen audio of
    fingerprint: str
    path: Path
    metrics: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)

    def check_model(self, loaded) -> None:
        """MelNetError unless `loaded` (a LoadedModel) is the VQ-VAE this net reads the codes of."""
        if loaded.fingerprint != self.fingerprint or loaded.config.codebook_size != self.net.cfg.codebook_size:
            raise MelNetError(
                f"{self.path}: mel net was trained on the codes of model {self.fingerprint}, not of "
                f"{loaded.path} ({loaded.fingerprint}); {HINT}"
            )
        if list(loaded.speakers[: len(self.speakers)]) != self.speakers:
            raise MelNetError(f"{self.path}: mel net's speaker table differs from {loaded.path}'s; {HINT}")

    def check_speaker(self, index: int, name: str | None = None) -> None:
        """MelNetError unless the net has learnt the VQ-VAE's speaker `index`."""
        known = index < len(self.speakers) and self.speakers[index] in self.trained
        if not known:
            who = name or (self.speakers[index] if index < len(self.speakers) else f"#{index}")
            more = ", ..." if len(self.trained) > 6 else ""
            raise MelNetError(
                f"{self.path}: the mel net was not trained on speaker {who!r} "
                f"(it knows {len(self.trained)}: {', '.join(self.trained[:6])}{more})"
            )


def default_melnet_path(model_path: str | Path) -> Path:
    """`models/X.pt` -> `models/X.mel.pt`."""
    return companion_path(model_path, SUFFIX)


def find_melnet(loaded, path: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedMelNet | None:
    """The mel net for `loaded` (a LoadedModel), checked against it: `path`, else NAME.mel.pt beside the
    model, None when there is none there; MelNetError for a missing `path`, a broken file or another
    model's net."""
    p = Path(path) if path is not None else default_melnet_path(loaded.path)
    if path is None and not p.is_file():
        return None
    found = load_melnet(p, device)
    found.check_model(loaded)
    return found


def save_melnet(
    path: str | Path,
    net: CodeMelNet,
    speakers: list[str],
    trained: list[str],
    fingerprint: str,
    *,
    metrics: dict | None = None,
    train: dict | None = None,
) -> None:
    fields = {
        "melnet_config": net.cfg.to_dict(),
        "speakers": list(speakers),
        "trained_speakers": list(trained),
        "vqvae_fingerprint": str(fingerprint),
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "metrics": metrics or {},
        "train": train or {},
    }
    write_companion(path, FORMAT, FORMAT_VERSION, fields)


def load_melnet(path: str | Path, device: str | torch.device = "cpu") -> LoadedMelNet:
    p = Path(path)
    data = read_companion(p, FORMAT, FORMAT_VERSION, "mel net", MelNetError, HINT)
    try:
        cfg = MelNetConfig.from_dict(data["melnet_config"])
        net = CodeMelNet(cfg)
        net.load_state_dict(data["model"], strict=True)
        speakers = [str(s) for s in data["speakers"]]
        trained = [str(s) for s in data["trained_speakers"]]
        fp = str(data["vqvae_fingerprint"])
    except (ValueError, TypeError, RuntimeError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MelNetError(f"{p}: mel net does not match its config ({msg[:160]})") from None
    if len(speakers) != cfg.n_speakers:
        raise MelNetError(f"{p}: mel net lists {len(speakers)} speakers but has {cfg.n_speakers} embeddings")
    return LoadedMelNet(
        net.to(device).eval(), speakers, trained, fp, p, dict(data.get("metrics") or {}), dict(data.get("train") or {})
    )
