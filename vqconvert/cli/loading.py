"""The model, speakers and sampler backend of the commands (exit 1/2 with one line)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vqconvert.cli.common import fail, resolve_device
from vqconvert.cli.report import one_line
from vqconvert.errors import CheckpointError, VQConvertError

if TYPE_CHECKING:
    from pathlib import Path

    from vqconvert.checkpoint import LoadedModel
    from vqconvert.melnet.store import LoadedMelNet


def check_backend(backend: str) -> None:
    """Exit 2 for a sampler backend `vqconvert.generate` does not have."""
    from vqconvert.sampling import BACKENDS

    if backend not in BACKENDS:
        fail(f"unknown --backend {backend!r}: choose from {', '.join(BACKENDS)}", 2)


def check_vocoder(loaded: LoadedModel, vocoder: str, mel_net: str | Path | None = None) -> LoadedMelNet | None:
    """Exit 2 for an unknown --vocoder; for griffin-lim, the mel net to render with (`mel_net`, else the
    one beside the model, NAME.mel.pt), None for the model's own mel head; exit 1 with one line when
    there is neither or the mel net is broken or of another model."""
    from vqconvert.melnet.store import MelNetError, find_melnet
    from vqconvert.vocoder import VOCODERS

    if vocoder not in VOCODERS:
        fail(f"unknown --vocoder {vocoder!r}: choose from {', '.join(VOCODERS)}", 2)
    if vocoder != "griffin-lim":
        if mel_net is not None:
            fail("--mel-net is for --vocoder griffin-lim", 2)
        return None
    try:
        found = find_melnet(loaded, mel_net, next(loaded.model.parameters()).device)
    except MelNetError as err:
        fail(one_line(str(err)))
    if found is None and loaded.config.mel_bins <= 0:
        fail(
            f"{loaded.path}: this model has no mel head and no mel net beside it, so --vocoder griffin-lim "
            "cannot render it (train one with `vqconvert train-mel`)"
        )
    return found


def check_mel_speakers(mel_net: LoadedMelNet | None, loaded: LoadedModel, indices) -> None:
    """Exit 1 with one line when the mel net has not learnt one of these speaker indices."""
    from vqconvert.melnet.store import MelNetError

    if mel_net is None:
        return
    try:
        for i in indices:
            mel_net.check_speaker(int(i))
    except MelNetError as err:
        fail(one_line(str(err)))


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
