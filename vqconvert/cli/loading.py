"""The model, speakers, sampler backend and chunk size of the inference commands (exit 1/2 with one line)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vqconvert.cli.common import fail, resolve_device
from vqconvert.cli.report import one_line
from vqconvert.errors import CheckpointError, VQConvertError

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel


def check_backend(backend: str) -> None:
    """Exit 2 for a sampler backend `vqconvert.generate` does not have."""
    import vqconvert.generate as gen

    known = getattr(gen, "BACKENDS", None)
    if known and backend not in known:
        fail(f"unknown --backend {backend!r}: choose from {', '.join(known)}", 2)


def load_cli_model(model: str | None, device: str) -> LoadedModel:
    """Load the model or exit 1 with one line."""
    from vqconvert.checkpoint import load_model

    dev = resolve_device(device)
    try:
        return load_model(model, dev)
    except CheckpointError as err:
        hint = " (pass -m/--model or set $VQCONVERT_MODEL)" if model is None and "not found" in str(err) else ""
        fail(one_line(f"{err}{hint}"))
    except VQConvertError as err:
        fail(one_line(str(err)))


def speaker_index(loaded: LoadedModel, name: str) -> int:
    try:
        return loaded.speaker_index(name)
    except VQConvertError as err:
        fail(str(err))


def _chunk_frames(loaded: LoadedModel, chunk_seconds: float) -> int:
    """--chunk-seconds in code frames (at least one)."""
    return max(1, round(chunk_seconds * loaded.config.sample_rate / loaded.config.hop))
