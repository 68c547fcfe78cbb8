"""The Evaluator: one evaluation run, from the corpus to the result dict (see `vqconvert.evaluation`).
It composes the steps of `generation`, `judging` and `report`, each a function over the run's explicit
`RunState`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vqconvert.evaluation import generation, judging, report
from vqconvert.evaluation.metrics import codebook_stats
from vqconvert.evaluation.options import METRICS, OPTIONAL_JUDGES, SPLITS, EvalError, EvalOptions
from vqconvert.evaluation.report import json_safe
from vqconvert.evaluation.selection import default_targets, select_utterances, train_split_settings, training_roots
from vqconvert.evaluation.state import RunState

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel


class Evaluator:
    """One evaluation run over a `RunState` (`self.state`). `run()` returns the result dict (keys
    RESULT_KEYS)."""

    def __init__(
        self,
        loaded: LoadedModel,
        data: Sequence[str | Path],
        opts: EvalOptions | None = None,
        *,
        log: Callable[[str], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.state = RunState(
            loaded,
            opts or EvalOptions(),
            [str(d) for d in data] if data else training_roots(loaded),
            log or (lambda _msg: None),
            progress or (lambda _what, _done, _total: None),
        )

    # -- setup ----------------------------------------------------------------------------------------

    def _check_options(self) -> None:
        o = self.state.opts
        if o.split not in SPLITS:
            raise EvalError(f"unknown split {o.split!r}: use {' or '.join(SPLITS)}")
        bad = [s for s in o.skip if s not in METRICS]
        if bad:
            raise EvalError(f"cannot skip {', '.join(bad)}: choose from {', '.join(METRICS)}")
        if o.max_seconds <= 0:
            raise EvalError("--max-seconds must be positive")
        if not self.state.data:
            raise EvalError("no corpus given, and the checkpoint records no training corpus: pass DATA")

    def _check_judges(self) -> None:
        from vqconvert.evaluation.judges import INSTALL_HINT, MissingJudge, import_judge, judge_versions

        run = self.state
        missing: dict[str, str] = {}
        for name in OPTIONAL_JUDGES:
            state = {"available": False, "skipped": name in run.opts.skip, "packages": None, "note": None}
            run.judges[name] = state
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
            if run.opts.require_all:
                raise EvalError(f"missing eval packages: {what}; install them with: {INSTALL_HINT}")
            run.notes.append(f"missing eval packages: {what}: those judges are skipped; {INSTALL_HINT}")
            run.log(
                f"warning: missing eval packages: {what}: those judges are skipped; install them with: {INSTALL_HINT}"
            )

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> dict:
        from vqconvert.data.corpus import scan_corpora, split_utterances

        t_start = time.perf_counter()
        self._check_options()
        self._check_judges()
        run = self.state
        o, loaded, cfg, sr = run.opts, run.loaded, run.loaded.config, run.sr
        utts = scan_corpora(run.data, mic=o.mic)
        val_fraction, holdout, recorded = train_split_settings(loaded)
        if o.split == "val":
            if not recorded:
                run.note(
                    f"the checkpoint records no training config: validation split recomputed with "
                    f"the defaults (val_fraction {val_fraction})"
                )
            train_part, pool = split_utterances(utts, val_fraction, holdout)
            if not pool:
                raise EvalError(
                    f"the validation split of {', '.join(run.data)} is empty (the model was "
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
        items = generation.load_sources(run, chosen)
        if not items:
            raise EvalError("none of the selected utterances could be read")
        run.log(
            f"evaluating {len(items)} utterances ({sum(len(i.audio) for i in items) / sr:.1f} s) "
            f"of {len({i.utt.speaker for i in items})} speakers from the {o.split} split "
            f"({len(pool)} utterances); targets: {', '.join(targets) or '-'}"
        )

        generation.encode(run, items, targets)
        generation.generate(run, items, targets)
        if o.out_dir is not None:
            generation.save(run, items)
        generation.reconstruction_metrics(run, items)
        speaker = judging.speaker_judge(run, items, targets, utts, in_train)
        intel, asr_noise = judging.intelligibility(run, items, targets)

        known = [i for i in items if i.known]
        recon = report.reconstruction_summary(run, items, known, speaker)
        transfer = report.transfer_summary(items, targets, speaker)
        codebook = codebook_stats([i.codes for i in items], cfg.codebook_size, sr, cfg.hop)
        judges = report.judges_summary(run, speaker, known, asr_noise)
        result = {
            "model": {
                "path": str(loaded.path),
                "fingerprint": loaded.fingerprint,
                "step": loaded.step,
                "preset": cfg.preset,
                "codebook_size": cfg.codebook_size,
                "speakers": len(loaded.speakers),
            },
            "data": {
                "roots": run.data,
                "split": o.split,
                "val_fraction": val_fraction,
                "holdout": list(holdout),
                "split_utterances": len(pool),
                "evaluated": len(items),
                "speakers": sorted({i.utt.speaker for i in items}),
                "unknown_speakers": sorted({i.utt.speaker for i in items if not i.known}),
                "max_seconds": o.max_seconds,
                "seconds": sum(len(i.audio) for i in items) / sr,
                "cropped": sum(i.cropped for i in items),
            },
            "settings": {
                "targets": targets,
                "seed": o.sampling.seed,
                "temperature": o.sampling.temperature,
                "greedy": o.sampling.greedy,
                "backend": o.sampling.backend,
                "vocoder": o.vocoder,
                "mel_net": None if o.mel_net is None else str(o.mel_net.path),
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
            "notes": run.notes,
        }
        return json_safe(result)

    # -- steps ----------------------------------------------------------------------------------------

    def _targets(self, utts) -> list[str]:
        run = self.state
        loaded = run.loaded
        if run.opts.targets:
            out = []
            for t in run.opts.targets:
                name = loaded.speakers[loaded.speaker_index(t)]
                if name not in out:
                    out.append(name)
            return out
        present = {u.speaker for u in utts}
        for root in run.reference_roots():
            if root not in run.data:
                present |= {u.speaker for u in run.scan(root)}
        return default_targets(loaded.speakers, [s for s in loaded.speakers if s in present], run.opts.n_targets)


def evaluate(loaded: LoadedModel, data: Sequence[str | Path], opts: EvalOptions | None = None, **kw) -> dict:
    """Run an evaluation (see `vqconvert.evaluation`); returns a JSON-ready dict with keys RESULT_KEYS."""
    return Evaluator(loaded, data, opts, **kw).run()
