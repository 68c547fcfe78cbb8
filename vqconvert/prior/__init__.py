"""A prior over a VQ-VAE's code indices (paper, section 4.3): `model` (the network, no I/O), `store` (its
own small checkpoint file, tied to the VQ-VAE's fingerprint), `train` (fitting it on codes files and the
bits-per-code metrics). CLI: `vqconvert train-prior`, `vqconvert sample`."""

from vqconvert.prior.model import PRIOR_PRESETS, CodePrior, PriorConfig
from vqconvert.prior.store import (
    FORMAT,
    FORMAT_VERSION,
    LoadedPrior,
    PriorError,
    default_prior_path,
    load_prior,
    save_prior,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PRIOR_PRESETS",
    "CodePrior",
    "LoadedPrior",
    "PriorConfig",
    "PriorError",
    "default_prior_path",
    "load_prior",
    "save_prior",
]
