"""Where the model that ships with vqconvert is: `models/` of a source checkout, else the copy installed
inside the package (`vqconvert/assets/`, package data of the wheel; in a checkout it links to models/)."""

from __future__ import annotations

import os
from pathlib import Path

SHIPPED_MODEL = "vqconvert-synth-small.pt"
_PACKAGE = Path(__file__).resolve().parent


def default_model_path() -> Path:
    """The shipped checkpoint: the checkout's models/ copy when there is one, else the installed one
    (returned even when missing, for the error message)."""
    checkout = _PACKAGE.parent / "models" / SHIPPED_MODEL
    installed = _PACKAGE / "assets" / SHIPPED_MODEL
    return checkout if checkout.is_file() or not installed.is_file() else installed


def default_model() -> str:
    """The model used when none is named: $VQCONVERT_MODEL, else the shipped checkpoint."""
    return os.environ.get("VQCONVERT_MODEL") or str(default_model_path())
