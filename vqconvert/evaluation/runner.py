"""The Evaluator: one evaluation run, from the corpus to the result dict (see `vqconvert.evaluation`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vqconvert.errors import VQConvertError
from vqconvert.evaluation.generation import GenerationSteps
from vqconvert.evaluation.judging import JudgingSteps
from vqconvert.evaluation.metrics import codebook_stats
from vqconvert.evaluation.options import METRICS, OPTIONAL_JUDGES, SPLITS, EvalError, EvalOptions
from vqconvert.evaluation.report import ReportSteps, json_safe
from vqconvert.evaluation.selection import default_targets, select_utterances, train_split_settings, training_roots

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel


class Evaluator(GenerationSteps, JudgingSteps, ReportSteps):
    """One evaluation run. `run()` returns the result dict (keys RESULT_KEYS)."""

    def __init__(
        self,
        loaded: LoadedModel,
        data: Sequence[str | Path],
        opts: EvalOptions | None = None,
        *,
        log: Callable[[str], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.loaded, self.opts = loaded, opts or EvalOptions()
        self.data = [str(d) for d in data] if data else training_roots(loaded)
        self.log = log or (lambda _msg: None)
        self.progress = progress or (lambda _what, _done, _total: None)
        self.notes: list[str] = []
        self.cfg = loaded.config
        self.sr = self.cfg.sample_rate
        self.judges: dict[str, dict] = {}
        self._scans: dict[str, list] = {}

    # -- setup ----------------------------------------------------------------------------------------

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        self.log(f"note: {msg}")

    def _check_options(self) -> None:
        o = self.opts
        if o.split not in SPLITS:
            raise EvalError(f"unknown split {o.split!r}: use {' or '.join(SPLITS)}")
        bad = [s for s in o.skip if s not in METRICS]
        if bad:
            raise EvalError(f"cannot skip {', '.join(bad)}: choose from {', '.join(METRICS)}")
        if o.max_seconds <= 0:
            raise EvalError("--max-seconds must be positive")
        if not self.data:
            raise EvalError("no corpus given, and the checkpoint records no training corpus: pass DATA")

    def _check_judges(self) -> None:
        from vqconvert.judges import INSTALL_HINT, MissingJudge, import_judge, judge_versions

        missing: dict[str, str] = {}
        for name in OPTIONAL_JUDGES:
            state = {"available": False, "skipped": name in self.opts.skip, "packages": None, "note": None}
            self.judges[name] = state
            if state["skipped"]:
                state["note"] = "skipped (--skip)"
                continue
            try:
                import_judge(name)
            except MissingJudge as err:
                missing[name] = err.package + (f", {err.detail}" if err.detail else "")
                state["note"] = f"missing package {err.package}" + (f" ({err.detail})" if err.detail else "")
                continue
            state["available"] = True
            state["packages"] = judge_versions(name)
        if missing:
            what = ", ".join(f"{pkg} ({judge})" for judge, pkg in missing.items())
            if self.opts.require_all:
                raise EvalError(f"missing eval packages: {what}; install them with: {INSTALL_HINT}")
            self.notes.append(f"missing eval packages: {what}: those judges are skipped; {INSTALL_HINT}")
            self.log(
                f"warning: missing eval packages: {what}: those judges are skipped; install them with: {INSTALL_HINT}"
            )

    def _use(self, name: str) -> bool:
        if name in OPTIONAL_JUDGES:
            return self.judges[name]["available"]
        return name not in self.opts.skip

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> dict:
        from vqconvert.data.corpus import scan_corpora, split_utterances

        t_start = time.perf_counter()
        self._check_options()
        self._check_judges()
        o, loaded = self.opts, self.loaded
        utts = scan_corpora(self.data, mic=o.mic)
        val_fraction, holdout, recorded = train_split_settings(loaded)
        if o.split == "val":
            if not recorded:
                self.note(
                    f"the checkpoint records no training config: validation split recomputed with "
                    f"the defaults (val_fraction {val_fraction})"
                )
            train_part, pool = split_utterances(utts, val_fraction, holdout)
            if not pool:
                raise EvalError(
                    f"the validation split of {', '.join(self.data)} is empty (the model was "
                    f"trained with val_fraction {val_fraction}): use --split all"
                )
        else:
            train_part, pool = [], list(utts)
        in_train = {u.key for u in train_part}
        unknown_sources = [s for s in o.sources if s not in {u.speaker for u in pool}]
        if unknown_sources:
            raise EvalError(f"no utterance of {', '.join(unknown_sources)} in the {o.split} split")
        chosen = select_utterances(pool, o.limit, o.max_seconds, o.sources)

        targets = self._targets(utts)
        items = self._load_sources(chosen)
        if not items:
            raise EvalError("none of the selected utterances could be read")
        self.log(
            f"evaluating {len(items)} utterances ({sum(len(i.audio) for i in items) / self.sr:.1f} s) "
            f"of {len({i.utt.speaker for i in items})} speakers from the {o.split} split "
            f"({len(pool)} utterances); targets: {', '.join(targets) or '-'}"
        )

        self._encode(items, targets)
        self._generate(items, targets)
        if o.out_dir is not None:
            self._save(items)
        self._reconstruction_metrics(items)
        speaker = self._speaker_judge(items, targets, utts, in_train)
        intel = self._intelligibility(items, targets)

        known = [i for i in items if i.known]
        recon = self._reconstruction_summary(items, known, speaker)
        transfer = self._transfer_summary(items, targets, speaker)
        codebook = codebook_stats([i.codes for i in items], self.cfg.codebook_size, self.sr, self.cfg.hop)
        judges = self._judges_summary(speaker, known)
        result = {
            "model": {
                "path": str(loaded.path),
                "fingerprint": loaded.fingerprint,
                "step": loaded.step,
                "preset": self.cfg.preset,
                "codebook_size": self.cfg.codebook_size,
                "speakers": len(loaded.speakers),
            },
            "data": {
                "roots": self.data,
                "split": o.split,
                "val_fraction": val_fraction,
                "holdout": list(holdout),
                "split_utterances": len(pool),
                "evaluated": len(items),
                "speakers": sorted({i.utt.speaker for i in items}),
                "unknown_speakers": sorted({i.utt.speaker for i in items if not i.known}),
                "max_seconds": o.max_seconds,
                "seconds": sum(len(i.audio) for i in items) / self.sr,
                "cropped": sum(i.cropped for i in items),
            },
            "settings": {
                "targets": targets,
                "seed": o.seed,
                "temperature": o.temperature,
                "greedy": o.greedy,
                "backend": o.backend,
                "batch_size": o.batch_size,
                "limit": o.limit,
                "reference_utterances": o.reference_utterances,
                "skip": list(o.skip),
                "seconds": round(time.perf_counter() - t_start, 2),
            },
            "judges": judges,
            "reconstruction": recon,
            "codebook": codebook,
            "transfer": transfer,
            "intelligibility": intel,
            "utterances": [i.row for i in items],
            "notes": self.notes,
        }
        return json_safe(result)

    # -- steps ----------------------------------------------------------------------------------------

    def _targets(self, utts) -> list[str]:
        loaded = self.loaded
        if self.opts.targets:
            out = []
            for t in self.opts.targets:
                name = loaded.speakers[loaded.speaker_index(t)]
                if name not in out:
                    out.append(name)
            return out
        present = {u.speaker for u in utts}
        for root in self._reference_roots():
            if root not in self.data:
                present |= {u.speaker for u in self._scan_quiet(root)}
        return default_targets(loaded.speakers, [s for s in loaded.speakers if s in present], self.opts.n_targets)

    def _reference_roots(self) -> list[str]:
        if self.opts.reference_roots is not None:
            return list(self.opts.reference_roots)
        roots = list(self.data)
        for r in training_roots(self.loaded):
            if r not in roots and Path(r).is_dir():
                roots.append(r)
        return roots

    def _scan_quiet(self, root: str) -> list:
        from vqconvert.data.corpus import scan_corpus

        if root not in self._scans:
            try:
                self._scans[root] = scan_corpus(root, mic=self.opts.mic)
            except VQConvertError as err:
                self.note(f"reference corpus skipped: {err}")
                self._scans[root] = []
        return self._scans[root]


def evaluate(loaded: LoadedModel, data: Sequence[str | Path], opts: EvalOptions | None = None, **kw) -> dict:
    """Run an evaluation (see `vqconvert.evaluation`); returns a JSON-ready dict with keys RESULT_KEYS."""
    return Evaluator(loaded, data, opts, **kw).run()
