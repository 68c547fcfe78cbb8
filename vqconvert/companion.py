"""Files that live beside a VQ-VAE checkpoint and serve its codes (the code prior `X.prior.pt`, the mel
net `X.mel.pt`): their default path, the atomic write and the weights-only read with one-line errors
that both share."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from vqconvert.checkpoint import atomic_torch_save, unpickling_reason


def companion_path(model_path: str | Path, suffix: str) -> Path:
    """`models/X.pt` -> `models/X{suffix}`; a run directory's latest.pt -> latest{suffix} beside it."""
    p = Path(model_path)
    return p.with_name(p.name[: -len(".pt")] + suffix if p.name.endswith(".pt") else p.name + suffix)


def write_companion(path: str | Path, fmt: str, version: int, fields: dict) -> None:
    """`fields` tagged with format `fmt` and `version`, saved atomically to `path`."""
    atomic_torch_save({"format": fmt, "version": version, **fields}, Path(path))


def read_companion(path: str | Path, fmt: str, version: int, what: str, error: type[Exception], hint: str) -> dict:
    """The dict saved in `path`, checked to be `fmt` at `version`; `error` with one line otherwise (`hint`
    says how to make one when the file is missing)."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: {what} file not found ({hint})")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise error(f"{p}: {unpickling_reason(str(e))}") from None
    except Exception as e:  # noqa: BLE001 - torch.load raises many types (struct.error for junk)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else "file is empty or truncated"
        raise error(f"{p}: not a readable {what} ({msg[:160]})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"{p}: not a vqconvert {what} file")
    if data.get("version") != version:
        raise error(f"{p}: {what} format version {data.get('version')} is not supported (this reads {version})")
    return data
