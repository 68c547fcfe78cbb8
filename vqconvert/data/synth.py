"""A synthetic multi-speaker English corpus from Debian's speech synthesizers.

Every synthesizer voice is one speaker: espeak-ng (a fixed set of its English voice variants), flite
(its built-in voices) and festival (the voices that are installed). The sentences come from the Debian
`fortunes` package (see data/README.md), so each utterance has an exact transcript.

Layout (the "generic" corpus layout): `OUT/<speaker>/<speaker>_<NNNN>.wav` (16 kHz mono PCM-16) with the
transcript in `<same stem>.txt`, plus `OUT/corpus.json`. Every engine is deterministic, so the same
inputs (seed, utterance count, voices, package versions) give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vqconvert.config import SAMPLE_RATE
from vqconvert.errors import DataError, VQConvertError

INSTALL_HINT = (
    "run `make synth-deps` (as root), or install the Debian packages yourself: "
    "apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fortunes"
)

# ----------------------------------------------------------------------------------------------------
# Voices
# ----------------------------------------------------------------------------------------------------

ENGINES = ("espeak-ng", "flite", "festival")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: `name` is the speaker id, `spec` the engine's own voice name."""

    name: str
    engine: str
    spec: str


def espeak_voice(spec: str) -> Voice:
    """`en-us+m3` -> Voice('espeak-en-us-m3', 'espeak-ng', 'en-us+m3')."""
    return Voice("espeak-" + re.sub(r"[^a-z0-9]+", "-", spec.lower()).strip("-"), "espeak-ng", spec)


# The default espeak-ng voices: one accent + voice variant each, chosen by measurement with
# `measure_voices` (the 4 MEASURE_TEXTS per voice, 16 kHz). Each voice is described by its median f0
# (librosa.pyin) and its mean MFCC 1-19 over non-silent frames; two voices count as near-identical when
# the mean-MFCC distance is < 25 and the f0 differs by < 2.5 semitones (espeak-ng 1.51 variants that
# differ only in minor parameters measure 0-24: klatt = klatt6 = caleb 0.0, steph/steph2 7.7,
# klatt/klatt2 15.7; different voices measure 30-200, median 88). Of the 101 variants rendered with
# en-us, 94 speech-like ones (robosoft*, UniRobot, anikaRobot, announcer, Demonic, Tweaky, croak, fast
# and "Mr serious" left out) fall into 68 groups; from distinct groups 6 male, 5 female and 1 whisper
# voice were kept, spread over six espeak-ng English accents for accent variety (as VCTK has). Nearest
# pairs in the final 18-voice set: festival-kal/festival-ked 28.1 (0.0 st), espeak-en-us-m3/
# espeak-en-m1 37.3 (1.8 st), flite-slt/festival-slt 37.5 (0.1 st; the same SLT recordings through two
# synthesis methods). data/README.md has the table.
ESPEAK_DEFAULT: tuple[str, ...] = (
    "en-us+m3",
    "en-us+f2",
    "en-us+klatt",
    "en-us+whisperf",
    "en+m1",  # espeak-ng's "en" is British English; "en-gb+VARIANT" silently ignores the variant
    "en+f4",
    "en-gb-x-rp+m7",
    "en-gb-x-rp+steph",
    "en-gb-scotland+m8",
    "en-029+f5",
    "en-us-nyc+david",
    "en-gb-x-gbclan+shelby",
)

# flite's built-in voices. Left out: `kal16`, near-identical to festival's kal_diphone (the same Kal
# diphones: mean-MFCC distance 7.4, f0 2.0 semitones apart); `kal`, the same diphones at 8 kHz (same
# f0, MFCC distance 61 from kal16 only from the missing 4-8 kHz band); `awb_time`, which only says times.
FLITE_DEFAULT: tuple[str, ...] = ("awb", "rms", "slt")

# festival's English voices in Debian 12 main, by speaker name -> festival voice name. (rab_diphone,
# festvox-rablpc16k, is not in Debian 12; other installed voices can be asked for as festival:NAME.)
FESTIVAL_KNOWN: dict[str, str] = {
    "festival-kal": "kal_diphone",  # festvox-kallpc16k
    "festival-ked": "ked_diphone",  # festvox-kdlpc16k
    "festival-slt": "cmu_us_slt_arctic_hts",  # festvox-us-slt-hts (32 kHz, resampled)
}


def default_voices() -> list[Voice]:
    """The fixed default voice list, installed or not, in corpus order."""
    out = [espeak_voice(s) for s in ESPEAK_DEFAULT]
    out += [Voice(f"flite-{v}", "flite", v) for v in FLITE_DEFAULT]
    out += [Voice(name, "festival", spec) for name, spec in FESTIVAL_KNOWN.items()]
    return out


def _run(cmd: Sequence[str], input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            list(cmd), input=input, capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise DataError(f"{cmd[0]} is not installed; {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise DataError(f"{cmd[0]} did not finish within {timeout:.0f} s") from None


def engine_installed(engine: str) -> bool:
    return shutil.which(engine) is not None


@lru_cache(maxsize=8)
def _espeak_variants(path_key: str) -> frozenset[str]:
    res = _run(["espeak-ng", "--voices=variant"])
    names = set()
    for line in res.stdout.splitlines()[1:]:
        m = re.search(r"!v/(\S+)", line)
        if m:
            names.add(m.group(1))
    return frozenset(names)


@lru_cache(maxsize=8)
def _espeak_languages(path_key: str) -> frozenset[str]:
    res = _run(["espeak-ng", "--voices"])
    names = set()
    for line in res.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 1:
            names.add(fields[1])  # the language column
        names.update(re.findall(r"\((\S+) \d+\)", line))  # "other languages": (en 2)
    return frozenset(names)


@lru_cache(maxsize=8)
def _flite_voices(path_key: str) -> frozenset[str]:
    res = _run(["flite", "-lv"])
    text = res.stdout + res.stderr
    return frozenset(text.split(":", 1)[1].split()) if ":" in text else frozenset()


@lru_cache(maxsize=8)
def _festival_voices(path_key: str) -> frozenset[str]:
    res = _run(["festival", "-b", "(print (voice.list))"])
    return frozenset(res.stdout.strip().strip("()").split())


def _path_key() -> str:
    return os.environ.get("PATH", "")


def voice_installed(voice: Voice) -> bool:
    """Whether the engine and this voice of it are installed."""
    if not engine_installed(voice.engine):
        return False
    key = _path_key()
    try:
        if voice.engine == "espeak-ng":
            lang, _, variant = voice.spec.partition("+")
            return lang in _espeak_languages(key) and (not variant or variant in _espeak_variants(key))
        if voice.engine == "flite":
            return voice.spec in _flite_voices(key)
        if voice.engine == "festival":
            return voice.spec in _festival_voices(key)
    except DataError:
        return False
    return False


def available_voices() -> list[Voice]:
    """The default voices that are installed here, in corpus order."""
    return [v for v in default_voices() if voice_installed(v)]


def resolve_voice(name: str) -> Voice:
    """A default voice by speaker name, or any engine voice as `espeak-ng:en-gb+f3`, `flite:slt`,
    `festival:kal_diphone`."""
    for v in default_voices():
        if v.name == name:
            return v
    engine, sep, spec = name.partition(":")
    if sep and spec:
        engine = {"espeak": "espeak-ng"}.get(engine, engine)
        if engine == "espeak-ng":
            return espeak_voice(spec)
        if engine == "flite":
            return Voice(f"flite-{spec}", "flite", spec)
        if engine == "festival":
            short = spec.removesuffix("_diphone")
            return Voice(f"festival-{re.sub(r'[^a-z0-9]+', '-', short.lower())}", "festival", spec)
    known = ", ".join(v.name for v in default_voices())
    raise DataError(
        f"unknown voice {name!r}: use one of {known}, "
        "or ENGINE:VOICE with ENGINE espeak-ng, flite or festival"
    )


def engine_versions(engines: Iterable[str]) -> dict[str, str]:
    """`--version` lines of the engines (and their Debian package versions where dpkg knows them)."""
    out = {}
    for engine in sorted(set(engines)):
        if engine == "espeak-ng":
            text = _run(["espeak-ng", "--version"]).stdout
            m = re.search(r"text-to-speech:\s*(\S+)", text)
        elif engine == "flite":
            text = _run(["flite", "--version"]).stdout
            m = re.search(r"version:\s*(\S+)", text)
        else:
            text = _run(["festival", "--version"]).stdout
            m = re.search(r"System:\s*(\S+)", text)
        out[engine] = m.group(1) if m else " ".join(text.split())[:80]
    return out


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed Debian package versions ({} where dpkg-query is absent)."""
    if not shutil.which("dpkg-query"):
        return {}
    out = {}
    for pkg in packages:
        res = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=False
        )
        if res.returncode == 0 and res.stdout.strip():
            out[pkg] = res.stdout.strip()
    return out


PACKAGES = {
    "espeak-ng": ("espeak-ng", "espeak-ng-data"),
    "flite": ("flite",),
    "festival": ("festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"),
}

# ----------------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------------

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Files of the Debian `fortunes` package (plus `fortunes` itself, from `fortunes-min`) used as text.
# Left out: ASCII art, definitions, code-heavy (perl, linux, debian, computers jargon is kept), headline
# and nonsense collections (news, zippy), and the ones with ethnic, political or drug jokes.
FORTUNE_FILES: tuple[str, ...] = (
    "fortunes", "literature", "wisdom", "science", "education", "food", "pets", "kids", "sports",
    "work", "people", "platitudes", "medicine", "humorists", "love", "paradoxum", "goedel", "magic",
    "tao", "songs-poems", "miscellaneous", "computers", "cookie",
)
MIN_WORDS, MAX_WORDS = 3, 20
_ABBREV = re.compile(
    r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Wm|Prof|Gen|Col|Capt|Lt|Rev|Inc|Ltd|Co|No|Mt|ie|eg|[A-Z])\.$"
)
_PLAIN = re.compile(r"^[A-Z][A-Za-z ,.'?!;:-]*[.?!]$")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _fortune_entries(path: Path) -> Iterable[list[str]]:
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() == "%":
            yield lines
            lines = []
        else:
            lines.append(line)
    if lines:
        yield lines


def _sentences_of(text: str) -> list[str]:
    parts: list[str] = []
    for piece in _SPLIT.split(text):
        if parts and _ABBREV.search(parts[-1]):
            parts[-1] += " " + piece
        else:
            parts.append(piece)
    return parts


def plain_sentence(s: str) -> bool:
    """ASCII letters and , . ' ? ! ; : - only, 3-20 words, capitalised, ending in . ? or !, no
    acronyms or abbreviations (engines read those differently), no ellipses or dashes."""
    if not _PLAIN.match(s) or "--" in s or ".." in s or re.search(r"[.?!;:,][A-Za-z]", s):
        return False
    words = s.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    for w in words:
        core = w.strip(",.'?!;:-")
        if len(core) > 1 and core.isupper():
            return False
        if w.startswith(("'", "-")) or w.endswith("-"):
            return False
    return not _ABBREV.search(s.rsplit(" ", 1)[-1]) and "." not in s[:-1]


def load_sentences(fortune_dir: Path | None = None) -> list[str]:
    """The corpus sentences, in a fixed order (file order, then entry order), duplicates removed."""
    root = Path(fortune_dir) if fortune_dir is not None else FORTUNE_DIR
    missing = [f for f in FORTUNE_FILES if not (root / f).is_file()]
    if missing:
        raise DataError(
            f"the text source (Debian package `fortunes`) is missing: no {root / missing[0]}; {INSTALL_HINT}"
        )
    out: list[str] = []
    seen: set[str] = set()
    for name in FORTUNE_FILES:
        for entry in _fortune_entries(root / name):
            body = [ln.strip() for ln in entry if not ln.strip().startswith("--")]
            text = " ".join(" ".join(body).split())
            for s in _sentences_of(text):
                s = s.strip()
                key = s.lower()
                if plain_sentence(s) and key not in seen:
                    seen.add(key)
                    out.append(s)
    return out


def sentence_order(n_sentences: int, voice_name: str, seed: int) -> list[int]:
    """A permutation of sentence indices, fixed by (seed, voice): a longer corpus extends a shorter one."""
    digest = hashlib.sha256(f"vqconvert-synth:{seed}:{voice_name}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    order = list(range(n_sentences))
    rng.shuffle(order)
    return order


# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------


def _check(res: subprocess.CompletedProcess, what: str) -> None:
    if res.returncode != 0:
        tail = " ".join((res.stderr or res.stdout or "").split())[-300:]
        raise DataError(f"{what} failed (exit {res.returncode}): {tail or 'no message'}")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_raw(voice: Voice, texts: Sequence[str], paths: Sequence[Path]) -> None:
    """Synthesize texts[i] to paths[i] as the engine's own WAV (its own sample rate)."""
    if voice.engine == "espeak-ng":
        for text, path in zip(texts, paths, strict=True):
            res = _run(["espeak-ng", "-v", voice.spec, "-w", str(path)], input=text)
            _check(res, f"espeak-ng -v {voice.spec}")
    elif voice.engine == "flite":
        for text, path in zip(texts, paths, strict=True):
            res = _run(["flite", "-voice", voice.spec, "-t", text, "-o", str(path)])
            _check(res, f"flite -voice {voice.spec}")
    elif voice.engine == "festival":
        # One festival process per batch: start-up (~0.4 s) dominates single sentences. Output is
        # byte-identical to `text2wave -eval '(voice_X)'`.
        lines = [f"(voice_{voice.spec})"]
        for text, path in zip(texts, paths, strict=True):
            lines.append(
                f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "
                f"{_scheme_string(str(path))} 'riff)"
            )
        with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as fh:
            fh.write("\n".join(lines) + "\n")
            script = fh.name
        try:
            res = _run(["festival", "-b", script], timeout=60 + 20 * len(texts))
        finally:
            os.unlink(script)
        _check(res, f"festival voice {voice.spec}")
        if "SIOD ERROR" in (res.stderr or "") + (res.stdout or ""):
            raise DataError(f"festival voice {voice.spec} failed: {' '.join(res.stderr.split())[-300:]}")
    else:
        raise DataError(f"unknown synthesizer engine {voice.engine!r}")
    for path in paths:
        if not path.is_file() or path.stat().st_size <= 44:
            raise DataError(f"{voice.engine} voice {voice.spec} wrote no audio for {path.name}")


def render_to_arrays(voice: Voice, texts: Sequence[str], sample_rate: int = SAMPLE_RATE) -> list:
    """Synthesize texts -> float32 arrays at `sample_rate` (used by tests and `measure_voices`)."""
    from vqconvert.audio import load_audio

    with tempfile.TemporaryDirectory(prefix="vqsynth-") as tmp:
        paths = [Path(tmp) / f"{i:04d}.wav" for i in range(len(texts))]
        render_raw(voice, texts, paths)
        return [load_audio(p, sample_rate) for p in paths]


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _render_chunk(voice: Voice, items: Sequence[tuple[Path, str]], sample_rate: int) -> float:
    """Render (wav path, text) items; returns seconds of audio written."""
    from vqconvert.audio import load_audio, save_wav

    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="vqsynth-") as tmp:
        raw = [Path(tmp) / f"{i:04d}.wav" for i in range(len(items))]
        render_raw(voice, [t for _, t in items], raw)
        for (wav, text), src in zip(items, raw, strict=True):
            audio = load_audio(src, sample_rate)
            _write_text_atomic(wav.with_suffix(".txt"), text + "\n")
            # only pending items (missing, incomplete, stale, or --overwrite) get here
            save_wav(wav, audio, sample_rate, overwrite=True)
            seconds += audio.shape[0] / sample_rate
    return seconds


def _complete(wav: Path, text: str) -> bool:
    txt = wav.with_suffix(".txt")
    if not (wav.is_file() and txt.is_file()):
        return False
    try:
        return txt.read_text(encoding="utf-8").strip() == text
    except OSError:
        return False


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
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), transient=False,
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


def _wav_seconds(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


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
        pending = [it for it in plan[v.name] if overwrite or not _complete(*it)]
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
                    fut = pool.submit(_render_chunk, v, items, sample_rate)
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
        secs = sum(_wav_seconds(w) for w, _ in plan[v.name])
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
        "packages": package_versions(
            [p for e in engines for p in PACKAGES.get(e, ())] + ["fortunes", "fortunes-min"]
        ),
        "text": {
            "source": "Debian package `fortunes` (and `fortunes-min`), " + str(FORTUNE_DIR),
            "files": list(FORTUNE_FILES),
            "sentences": len(sentences),
            "sha256": text_sha,
        },
        "total_utterances": n_per_voice * len(chosen),
        "total_seconds": round(total_seconds, 3),
    }
    _write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    if n_todo:
        say(f"synthesized {n_todo} utterances in {elapsed:.1f} s ({n_todo / max(elapsed, 1e-9):.1f} utt/s)")
    return manifest


# ----------------------------------------------------------------------------------------------------
# Measuring how alike voices sound (how the default list was chosen)
# ----------------------------------------------------------------------------------------------------

MEASURE_TEXTS = (
    "Be cautious in your daily affairs.",
    "Friendship needs a certain parallelism of life, a community of thought, a rivalry of aim.",
    "When you go out into the world, watch for traffic, hold hands, and stick together.",
    "The wages of sin are high but you get your money's worth.",
)


def voice_features(voice: Voice, texts: Sequence[str] = MEASURE_TEXTS) -> dict:
    """Median f0 (Hz, pyin; 0 for unvoiced voices) and mean MFCC 1-19 over non-silent frames."""
    import librosa
    import numpy as np

    audio = np.concatenate(render_to_arrays(voice, texts, SAMPLE_RATE))
    mfcc = librosa.feature.mfcc(y=audio, sr=SAMPLE_RATE, n_mfcc=20, n_fft=512, hop_length=160)
    rms = librosa.feature.rms(y=audio, frame_length=512, hop_length=160)[0]
    n = min(mfcc.shape[1], rms.shape[0])
    loud = rms[:n] > 0.1 * rms.max()
    f0, voiced, _ = librosa.pyin(
        audio, fmin=50, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=160
    )
    f0v = f0[voiced & np.isfinite(f0)]
    return {
        "f0": float(np.median(f0v)) if f0v.size > 0.05 * f0.size else 0.0,
        "mfcc": mfcc[1:, :n][:, loud].mean(axis=1).astype(float).tolist(),
        "peak": float(np.abs(audio).max()),
        "seconds": audio.size / SAMPLE_RATE,
    }


def voice_distance(a: dict, b: dict) -> tuple[float, float]:
    """(mean-MFCC Euclidean distance, |f0 difference| in semitones; 24 when one is unvoiced)."""
    import numpy as np

    d = float(np.linalg.norm(np.asarray(a["mfcc"]) - np.asarray(b["mfcc"])))
    if a["f0"] > 0 and b["f0"] > 0:
        st = float(abs(12 * np.log2(a["f0"] / b["f0"])))
    else:
        st = 0.0 if a["f0"] == b["f0"] else 24.0
    return d, st


def measure_voices(voices: Sequence[Voice], texts: Sequence[str] = MEASURE_TEXTS) -> dict[str, dict]:
    """Features of each voice (see `voice_features`), by speaker name."""
    return {v.name: voice_features(v, texts) for v in voices}
