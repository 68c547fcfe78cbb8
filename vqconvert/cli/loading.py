"""The model, speakers and sampler backend of the commands (exit 1/2 with one line)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vqconvert.cli.common import fail, resolve_device
from vqconvert.cli.report import one_line
from vqconvert.errors import CheckpointError, VQConvertError

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel


def check_backend(backend: str) -> None:
    """Exit 2 for a sampler backend `vqconvert.generate` does not have."""
    from vqconvert.sampling import BACKENDS

    if backend not in BACKENDS:
        fail(f"unknown --backend {backend!r}: choose from {', '.join(BACKENDS)}", 2)


def check_vocoder(loaded: LoadedModel, vocoder: str) -> None:
    """Exit 2 for an unknown --vocoder; exit 1 when the model cannot render it (no mel head)."""
    from vqconvert.vocoder import VOCODERS

    if vocoder not in VOCODERS:
        fail(f"unknown --vocoder {vocoder!r}: choose from {', '.join(VOCODERS)}", 2)
    if vocoder == "griffin-lim" and loaded.config.mel_bins <= 0:
        fail(
            f"{loaded.path}: this model has no mel head, so --vocoder griffin-lim cannot render it "
            "(train one with a mel head, e.g. --preset small-cond)"
        )


def load_cli_model(model: str | None, device: str) -> LoadedModel:
    """Load `model` (None: $VQCONVERT_MODEL, else the shipped model, also when installed) or exit 1
    with one line."""
    from vqconvert.checkpoint import load_model
    from vqconvert.shipped import default_model

    dev = resolve_device(device)
    try:
        return load_model(model if model is not None else default_model(), dev)
    except CheckpointError as err:
        hint = " (pass -m/--model or set $VQCONVERT_MODEL)" if model is None and "not found" in str(err) else ""
        fail(one_line(f"{err}{hint}"))
    except VQConvertError as err:
        fail(one_line(str(err)))


def speaker_index(loaded: LoadedModel, name: str) -> int:
    """The index of voice `name` (a name or an index), or exit 1 with one line."""
    try:
        return loaded.speaker_index(name)
    except VQConvertError as err:
        fail(str(err))
