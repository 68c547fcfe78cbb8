"""Building the synthetic corpus: plan, render in parallel (resumable), write the manifest."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from vqconvert.config import SAMPLE_RATE
from vqconvert.data.synth import texts
from vqconvert.data.synth.render import is_complete, render_chunk, wav_seconds, write_text_atomic
from vqconvert.data.synth.texts import MIN_WORDS, load_sentences, sentence_order
from vqconvert.data.synth.voices import (
    ENGINES,
    INSTALL_HINT,
    PACKAGES,
    Voice,
    available_voices,
    default_voices,
    engine_installed,
    engine_versions,
    package_versions,
    resolve_voice,
    voice_installed,
)
from vqconvert.errors import DataError, VQConvertError


class _Progress:
    """A one-line progress report on stderr (rich when it is a terminal, plain lines otherwise)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self.t0 = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.task = self.bar.add_task("synthesizing", total=total)
            self.bar.start()

    def advance(self, n: int) -> None:
        if not self.enabled:
            return
        with self.lock:
            self.done += n
            if self.bar is not None:
                self.bar.update(self.task, completed=self.done)
                return
            now = time.monotonic()
            if now - self.last >= 10 or self.done == self.total:
                self.last = now
                rate = self.done / max(now - self.t0, 1e-9)
                print(f"synthesized {self.done}/{self.total} ({rate:.1f} utt/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


MANIFEST = "corpus.json"
FORMAT = "vqconvert-synth-corpus/1"
CHUNK = 16


def build_synth_corpus(
    out_dir: str | Path,
    utterances_per_voice: int = 200,
    voices: list[str] | None = None,
    jobs: int = 2,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    sample_rate: int = SAMPLE_RATE,
    fortune_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Render every (voice, sentence) pair to OUT/<speaker>/<speaker>_<NNNN>.wav + .txt; return the manifest.

    `voices`: speaker names (see `default_voices`) or ENGINE:VOICE; default all installed default
    voices. Existing complete files are kept (resumable) unless `overwrite`. The manifest is written
    to OUT/corpus.json; it holds no timestamps, so it too is reproducible.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True) if progress else None)
    if utterances_per_voice < 1:
        raise DataError("utterances per voice must be at least 1")
    if jobs < 1:
        raise DataError("jobs must be at least 1")
    if voices:
        chosen = [resolve_voice(v) for v in voices]
        names = [v.name for v in chosen]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(f"voice given twice: {', '.join(dup)}")
        missing = [v for v in chosen if not voice_installed(v)]
        if missing:
            bad = missing[0]
            what = f"{bad.engine} is not installed"
            if engine_installed(bad.engine):
                what = f"{bad.engine} has no voice {bad.spec!r}"
            raise DataError(f"voice {bad.name}: {what}; {INSTALL_HINT}")
    else:
        if not any(engine_installed(e) for e in ENGINES):
            raise DataError(f"no speech synthesizer (espeak-ng, flite, festival) installed; {INSTALL_HINT}")
        chosen = available_voices()
        if not chosen:
            raise DataError(f"none of the default synthesizer voices is installed; {INSTALL_HINT}")
        absent = [v.name for v in default_voices() if v not in chosen]
        if absent:
            say(f"voices not installed, left out: {', '.join(absent)}")

    sentences = load_sentences(Path(fortune_dir) if fortune_dir is not None else None)
    if len(sentences) < MIN_WORDS:
        raise DataError("the text source gave too few sentences")
    text_sha = hashlib.sha256("\n".join(sentences).encode()).hexdigest()
    n_per_voice = min(utterances_per_voice, len(sentences))
    if n_per_voice < utterances_per_voice:
        say(f"only {len(sentences)} distinct sentences: {n_per_voice} utterances per voice")

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{out}: cannot create ({err.strerror or err})") from None
    manifest_path = out / MANIFEST
    if manifest_path.is_file() and not overwrite:
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("seed", seed) != seed or old.get("text", {}).get("sha256", text_sha) != text_sha:
            raise DataError(
                f"{out} holds a corpus made with another seed or text (see {manifest_path}); "
                "use another directory or --overwrite"
            )

    # Plan: for each voice, the first n sentences of its own permutation.
    plan: dict[str, list[tuple[Path, str]]] = {}
    for v in chosen:
        vdir = out / v.name
        vdir.mkdir(exist_ok=True)
        order = sentence_order(len(sentences), v.name, seed)[:n_per_voice]
        plan[v.name] = [(vdir / f"{v.name}_{i:04d}.wav", sentences[k]) for i, k in enumerate(order)]

    todo: list[tuple[Voice, list[tuple[Path, str]]]] = []
    n_todo = 0
    for v in chosen:
        pending = [it for it in plan[v.name] if overwrite or not is_complete(*it)]
        n_todo += len(pending)
        for i in range(0, len(pending), CHUNK):
            todo.append((v, pending[i : i + CHUNK]))
    skipped = len(chosen) * n_per_voice - n_todo
    if skipped:
        say(f"{skipped} utterances already there, kept")

    bar = _Progress(n_todo, progress)
    t0 = time.monotonic()
    try:
        if todo:
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="synth") as pool:
                futures = []
                for v, items in todo:
                    fut = pool.submit(render_chunk, v, items, sample_rate)
                    fut.add_done_callback(
                        lambda f, n=len(items): None if f.cancelled() or f.exception() else bar.advance(n)
                    )
                    futures.append(fut)
                done, not_done = wait(futures, return_when=FIRST_EXCEPTION)
                for f in not_done:
                    f.cancel()
                for f in futures:
                    if f.done() and not f.cancelled() and f.exception() is not None:
                        err = f.exception()
                        if isinstance(err, VQConvertError):
                            raise err
                        raise DataError(f"synthesis failed: {err}") from err
    finally:
        bar.close()
    elapsed = time.monotonic() - t0

    voice_rows = []
    total_seconds = 0.0
    for v in chosen:
        secs = sum(wav_seconds(w) for w, _ in plan[v.name])
        total_seconds += secs
        row = {"name": v.name, "engine": v.engine, "spec": v.spec}
        voice_rows.append({**row, "utterances": n_per_voice, "seconds": round(secs, 3)})
    engines = sorted({v.engine for v in chosen})
    manifest = {
        "format": FORMAT,
        "layout": "generic: <speaker>/<speaker>_<NNNN>.wav with the transcript in <same stem>.txt",
        "sample_rate": sample_rate,
        "seed": seed,
        "utterances_per_voice": n_per_voice,
        "voices": voice_rows,
        "engines": engine_versions(engines),
        "packages": package_versions([p for e in engines for p in PACKAGES.get(e, ())] + ["fortunes", "fortunes-min"]),
        "text": {
            "source": "Debian package `fortunes` (and `fortunes-min`), " + str(texts.FORTUNE_DIR),
            "files": list(texts.FORTUNE_FILES),
            "sentences": len(sentences),
            "sha256": text_sha,
        },
        "total_utterances": n_per_voice * len(chosen),
        "total_seconds": round(total_seconds, 3),
    }
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    if n_todo:
        say(f"synthesized {n_todo} utterances in {elapsed:.1f} s ({n_todo / max(elapsed, 1e-9):.1f} utt/s)")
    return manifest
