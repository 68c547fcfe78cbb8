"""The explicit state of one evaluation run, which every step reads and writes: the model, the options,
the corpora, the notes, which judges are usable, and the evaluated items (see `vqconvert.evaluation`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vqconvert.errors import VQConvertError
from vqconvert.evaluation.options import OPTIONAL_JUDGES, EvalOptions
from vqconvert.evaluation.selection import training_roots

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel


@dataclass
class EvalItem:
    """One evaluated utterance: its audio, codes, outputs and result row."""

    utt: Any
    audio: np.ndarray
    cropped: bool
    seconds_trimmed: float
    known: bool
    spk_index: int | None
    codes: torch.Tensor | None = None
    speaker_gain_bits: float | None = None  # vqconvert.stats.speaker_gain over the other voices scored
    row: dict = field(default_factory=dict)
    recon: np.ndarray | None = None
    recon_voice: str | None = None
    conversions: dict[str, np.ndarray] = field(default_factory=dict)  # target -> audio


@dataclass
class RunState:
    """One run: what it evaluates with, what it has found out so far, and where it reports."""

    loaded: LoadedModel
    opts: EvalOptions
    data: list[str]
    log: Callable[[str], None]
    progress: Callable[[str, int, int], None]
    notes: list[str] = field(default_factory=list)
    judges: dict[str, dict] = field(default_factory=dict)  # judge -> {"available", "skipped", ...}
    scans: dict[str, list] = field(default_factory=dict)  # reference corpus root -> its utterances

    @property
    def sr(self) -> int:
        return self.loaded.config.sample_rate

    @property
    def hop(self) -> int:
        return self.loaded.config.hop

    def note(self, msg: str) -> None:
        """A note for the result (and the log)."""
        self.notes.append(msg)
        self.log(f"note: {msg}")

    def use(self, name: str) -> bool:
        """Whether metric or judge `name` runs: not skipped, and its package present."""
        if name in OPTIONAL_JUDGES:
            return self.judges[name]["available"]
        return name not in self.opts.skip

    def reference_roots(self) -> list[str]:
        """Corpora the speaker judge takes reference audio from: DATA, then the options' reference
        roots, or without them the model's training corpora that exist here. Its candidates are the
        model's speakers found in them, so fixing the roots fixes the judge across models."""
        if self.opts.reference_roots is not None:
            extra = list(self.opts.reference_roots)
        else:
            extra = [r for r in training_roots(self.loaded) if Path(r).is_dir()]
        roots = list(self.data)
        for r in extra:
            if r not in roots:
                roots.append(r)
        return roots

    def scan(self, root: str) -> list:
        """The utterances of a reference corpus (scanned once; an unusable one is a note)."""
        from vqconvert.data.corpus import scan_corpus

        if root not in self.scans:
            try:
                self.scans[root] = scan_corpus(root, mic=self.opts.mic)
            except VQConvertError as err:
                self.note(f"reference corpus skipped: {err}")
                self.scans[root] = []
        return self.scans[root]
