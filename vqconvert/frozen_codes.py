"""Training a new decoder on another model's codes: its encoder and codebook are copied in and frozen
(`vqconvert train --codes-from MODEL`). The new model then has the same fingerprint, so codes files
made with either model decode with both, and the decoder's training starts from codes that already mean
something instead of learning them jointly."""

from __future__ import annotations

import torch

from vqconvert.errors import CheckpointError, VQConvertError
from vqconvert.model import VQVAE

# What must agree for the copied encoder and codebook to fit.
SHAPE_FIELDS = ("enc_hidden", "enc_res_blocks", "latent_dim", "codebook_size", "sample_rate")


def copy_codes(model: VQVAE, source: str) -> str:
    """Copy `source`'s encoder and codebook into `model`; returns the source's fingerprint."""
    from vqconvert.checkpoint import load_model

    try:
        src = load_model(source)
    except VQConvertError as err:
        raise CheckpointError(f"--codes-from: {err}") from None
    diff = [f for f in SHAPE_FIELDS if getattr(src.config, f) != getattr(model.cfg, f)]
    if src.config.ema or model.cfg.ema:  # an EMA codebook keeps moving without gradients
        diff.append("ema codebook")
    if diff:
        raise CheckpointError(f"--codes-from {source}: its encoder differs from the preset's ({', '.join(diff)})")
    with torch.no_grad():
        model.encoder.load_state_dict({k: v.float() for k, v in src.model.encoder.state_dict().items()})
        q = {k: (v.float() if v.is_floating_point() else v) for k, v in src.model.quantizer.state_dict().items()}
        model.quantizer.load_state_dict(q)
    return src.fingerprint


def freeze_codes(model: VQVAE) -> None:
    """No gradient, no dead-code restarts, no k-means init: the encoder and codebook stay as they are."""
    model.encoder.requires_grad_(False)
    model.quantizer.requires_grad_(False)
    model.quantizer.dead_code_steps = 0
    model.quantizer.initialized.fill_(True)
