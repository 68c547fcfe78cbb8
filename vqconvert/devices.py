"""The one reading of a `--device` name: auto, cpu, cuda or cuda:N."""

from __future__ import annotations

from vqconvert.errors import VQConvertError


class DeviceError(VQConvertError):
    """A device that is unknown or not available here."""


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; explicit names are checked (DeviceError)."""
    import torch

    name = name.lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} asked for, but CUDA is not available here (use --device cpu or auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    return name


def judge_device(device: str) -> str:
    """Where the evaluation's judges run for a resolved model device: cuda or cpu."""
    return "cuda" if device.startswith("cuda") else "cpu"
