"""Options, constants and the error of an evaluation run (see `vqconvert.evaluation`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vqconvert.errors import VQConvertError
from vqconvert.sampling import SamplingOptions

SPLITS = ("val", "all")
METRICS = ("nll", "mcd", "stoi", "pesq", "speaker", "asr")  # what `skip` may name
OPTIONAL_JUDGES = ("speaker", "asr", "stoi", "pesq")  # the ones that need the eval extra
RESULT_KEYS = (
    "model",
    "data",
    "settings",
    "judges",
    "reconstruction",
    "codebook",
    "transfer",
    "intelligibility",
    "utterances",
    "notes",
)
TRIM_DB = 40.0  # as the trainer's cache


class EvalError(VQConvertError):
    """Evaluation cannot run (nothing to evaluate, a judge required but missing, ...)."""


@dataclass
class EvalOptions:
    """What `vqconvert evaluate` measures and how (its option defaults are these)."""

    split: str = "val"  # "val": the model's validation split; "all": every utterance
    limit: int = 8  # utterances to evaluate (0 = all of the split)
    max_seconds: float = 2.0  # crop each utterance to this
    targets: tuple[str, ...] = ()  # target voices (names or indices); () = `n_targets` picked
    n_targets: int = 3
    sources: tuple[str, ...] = ()  # only these source speakers (() = any)
    # how clips are sampled: each batch with its own seed (seed * 100_003 + batch); the seed also draws
    # the noise controls
    sampling: SamplingOptions = SamplingOptions(seed=0, reseed_batches=True)
    batch_size: int = 16  # utterances generated together
    reference_utterances: int = 5  # real utterances per speaker for its centroid
    reference_seconds: float = 4.0  # each cropped to this
    reference_roots: tuple[str, ...] | None = None  # judge corpora beside DATA (None: the training corpora found)
    skip: tuple[str, ...] = ()  # metrics / judges not to run (METRICS)
    require_all: bool = False  # a missing judge package is an error instead of a note
    out_dir: Path | None = None  # save input, reconstruction and conversions as WAV here
    mic: str = "mic1"
    judge_device: str = "cpu"
    vocoder: str = "wavenet"  # or "griffin-lim" (vqconvert.vocoder): from `mel_net` or the model's mel head
    mel_net: Any = None  # a vqconvert.melnet.store.LoadedMelNet for the model's codes
