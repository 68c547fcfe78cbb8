"""Preprocessed, memory-mappable audio cache: every utterance decoded once, stored as int16.

Layout of `cache_dir/<key>/`: `audio.bin` (all utterances concatenated, int16 little-endian) and
`index.json` (entries, settings, key), written last; only a directory whose index says
`"complete": true` and whose audio size matches is trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vqconvert.audio import load_audio, trim_silence
from vqconvert.config import SAMPLE_RATE
from vqconvert.data.corpus import Utterance, scan_corpora
from vqconvert.errors import AudioError, DataError

CACHE_FORMAT = 1
AUDIO_FILE = "audio.bin"
INDEX_FILE = "index.json"
MAX_WARNINGS = 20


@dataclass(frozen=True)
class CacheEntry:
    speaker: str
    utt_id: str
    path: str
    text: str | None
    offset: int
    length: int

    @property
    def key(self) -> str:
        return f"{self.speaker}/{self.utt_id}"


class AudioCache:
    """A built cache opened read-only; audio comes from a lazily opened int16 memmap."""

    def __init__(self, path: Path, index: dict) -> None:
        self.path = path
        self.key: str = index["key"]
        self.settings: dict = index["settings"]
        self.sample_rate: int = int(index["settings"]["sample_rate"])
        self.skipped: list[str] = list(index.get("skipped", []))
        self.utterances = [CacheEntry(**e) for e in index["utterances"]]
        self.speakers = sorted({e.speaker for e in self.utterances})
        self.total_samples = int(index["total_samples"])
        self._samples: np.ndarray | None = None

    @classmethod
    def open(cls, path: str | Path) -> AudioCache:
        """Open and validate a cache directory; DataError when it is missing or incomplete."""
        path = Path(path)
        try:
            index = json.loads((path / INDEX_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: not a cache directory (no {INDEX_FILE})") from None
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: unreadable cache index ({err})") from None
        try:
            if index.get("format") != CACHE_FORMAT or index.get("complete") is not True:
                raise DataError(f"{path}: incomplete or outdated cache (delete it to rebuild)")
            cache = cls(path, index)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise DataError(f"{path}: malformed cache index ({err})") from None
        end = cache.utterances[-1].offset + cache.utterances[-1].length if cache.utterances else 0
        audio_path = path / AUDIO_FILE
        size = audio_path.stat().st_size if audio_path.is_file() else -1
        if not cache.utterances or end != cache.total_samples or size != 2 * cache.total_samples:
            raise DataError(f"{path}: cache audio does not match its index (delete it to rebuild)")
        return cache

    @property
    def samples(self) -> np.ndarray:
        """All audio, int16 memmap `(total_samples,)`."""
        if self._samples is None:
            shape = (self.total_samples,)
            self._samples = np.memmap(self.path / AUDIO_FILE, dtype="<i2", mode="r", shape=shape)
        return self._samples

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_samples"] = None  # DataLoader workers reopen the memmap instead of copying it
        return state

    def __len__(self) -> int:
        return len(self.utterances)

    def audio(self, i: int) -> np.ndarray:
        """Utterance `i` as float32 `(length,)` in [-1, 1)."""
        e = self.utterances[i]
        return self.samples[e.offset : e.offset + e.length] / np.float32(32768.0)

    def crop(self, i: int, start: int, length: int) -> np.ndarray:
        """float32 `(length,)` from sample `start` of utterance `i`, zero-padded past its end."""
        e = self.utterances[i]
        start = max(0, start)
        stop = min(e.length, start + length)
        out = np.zeros(length, dtype=np.float32)
        if stop > start:
            out[: stop - start] = self.samples[e.offset + start : e.offset + stop] / np.float32(32768.0)
        return out

    @property
    def total_seconds(self) -> float:
        return self.total_samples / self.sample_rate

    def __repr__(self) -> str:
        return (
            f"AudioCache({str(self.path)!r}, {len(self)} utterances, {len(self.speakers)} speakers, "
            f"{self.total_seconds / 3600:.2f} h)"
        )


def _warn(message: str, console=None) -> None:
    if console is not None:
        console.print(f"warning: {message}", markup=False, highlight=False)
    else:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def _settings(roots: Sequence[str | Path], sample_rate: int, trim_db: float | None, mic: str) -> dict:
    return {
        "format": CACHE_FORMAT,
        "sample_rate": int(sample_rate),
        "trim_db": None if trim_db is None else float(trim_db),
        "mic": mic,
        "roots": [str(Path(r).resolve()) for r in roots],
    }


def cache_key(utts: Sequence[Utterance], settings: dict) -> str:
    """16 hex digits of sha256 over the settings and every source's path, size, mtime and text."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for u in sorted(utts, key=lambda u: str(u.path)):
        try:
            st = u.path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        h.update(json.dumps([str(u.path.resolve()), size, mtime, u.speaker, u.utt_id, u.text]).encode())
    return h.hexdigest()[:16]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(cache_dir: Path) -> None:
    """Remove `.tmp-<key>-<pid>` build directories whose process is gone."""
    if not cache_dir.is_dir():
        return
    for tmp in cache_dir.glob(".tmp-*-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _decode(path: Path, sample_rate: int, trim_db: float | None) -> np.ndarray | AudioError:
    try:
        audio = load_audio(path, sample_rate)
    except AudioError as err:
        return err
    if trim_db is not None:
        audio = trim_silence(audio, top_db=trim_db, sample_rate=sample_rate)
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2")


def _decode_all(
    utts: Sequence[Utterance], sample_rate: int, trim_db: float | None, jobs: int
) -> Iterator[np.ndarray | AudioError]:
    """Decoded utterances in order; with jobs > 1 a bounded window of threads works ahead."""
    if jobs <= 1:
        for u in utts:
            yield _decode(u.path, sample_rate, trim_db)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        window: deque = deque()
        for u in utts:
            window.append(pool.submit(_decode, u.path, sample_rate, trim_db))
            if len(window) >= 4 * jobs:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _install(tmp: Path, final: Path) -> None:
    """Move a finished build into place, replacing an older directory of the same key. When another
    process installed a complete cache of this key meanwhile (two commands started on a cold cache),
    that one stays and this build is dropped: both hold the same audio."""
    old = None
    if final.exists():
        if _complete(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        if not _complete(final):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _complete(path: Path) -> bool:
    try:
        AudioCache.open(path)
    except (DataError, OSError):
        return False
    return True


def _build(utts: Sequence[Utterance], settings: dict, key: str, cache_dir: Path, progress: bool, jobs: int) -> Path:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    tmp = cache_dir / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    console = Console(stderr=True) if progress else None
    bar = Progress(
        TextColumn("caching audio"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=True,
    )
    entries: list[dict] = []
    skipped: list[str] = []
    offset = 0
    try:
        with open(tmp / AUDIO_FILE, "wb") as fh, bar:
            task = bar.add_task("cache", total=len(utts))
            decoded = _decode_all(utts, settings["sample_rate"], settings["trim_db"], jobs)
            for utt, result in zip(utts, decoded, strict=True):
                if isinstance(result, AudioError):
                    skipped.append(str(utt.path))
                    if len(skipped) <= MAX_WARNINGS:
                        _warn(f"skipping unreadable file: {result}", console)
                else:
                    fh.write(result.tobytes())
                    entries.append(
                        asdict(
                            CacheEntry(utt.speaker, utt.utt_id, str(utt.path), utt.text, offset, int(result.shape[0]))
                        )
                    )
                    offset += int(result.shape[0])
                bar.advance(task)
            fh.flush()
            os.fsync(fh.fileno())
        if skipped:
            _warn(f"skipped {len(skipped)} of {len(utts)} audio files that could not be read")
        if not entries:
            raise DataError(f"none of the {len(utts)} audio files could be read; nothing to cache")
        index = {
            "format": CACHE_FORMAT,
            "key": key,
            "settings": settings,
            "total_samples": offset,
            "skipped": skipped,
            "utterances": entries,
            "complete": True,
        }
        _write_json(tmp / INDEX_FILE, index)
        final = cache_dir / key
        _install(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _prepare(
    roots: Sequence[str | Path] | str | Path,
    cache_dir: str | Path,
    sample_rate: int,
    trim_db: float | None,
    mic: str,
) -> tuple[list[Utterance], dict, str, Path]:
    if isinstance(roots, (str, Path)):
        roots = [roots]
    utts = scan_corpora(roots, mic=mic)
    settings = _settings(roots, sample_rate, trim_db, mic)
    cache_dir = Path(cache_dir)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise DataError(f"{cache_dir}: cache path exists and is not a directory")
    return utts, settings, cache_key(utts, settings), cache_dir


def _build_and_open(
    utts: Sequence[Utterance], settings: dict, key: str, cache_dir: Path, progress: bool, jobs: int
) -> AudioCache:
    clean_stale_temps(cache_dir)
    start = time.perf_counter()
    cache = AudioCache.open(_build(utts, settings, key, cache_dir, progress, jobs))
    if progress:
        seconds = time.perf_counter() - start
        print(
            f"cached {len(cache)} utterances ({cache.total_seconds / 60:.1f} min) in {seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return cache


def build_cache(
    roots: Sequence[str | Path] | str | Path,
    cache_dir: str | Path,
    sample_rate: int = SAMPLE_RATE,
    trim_db: float | None = 40.0,
    mic: str = "mic1",
    progress: bool = True,
    jobs: int = 1,
) -> AudioCache:
    """Decode every utterance of `roots` (resample, trim) into `cache_dir/<key>/`, always rebuilding.

    Unreadable files are skipped with a warning; DataError when none is left.
    """
    utts, settings, key, cache_dir = _prepare(roots, cache_dir, sample_rate, trim_db, mic)
    return _build_and_open(utts, settings, key, cache_dir, progress, jobs)


def load_or_build_cache(
    roots: Sequence[str | Path] | str | Path,
    cache_dir: str | Path,
    sample_rate: int = SAMPLE_RATE,
    trim_db: float | None = 40.0,
    mic: str = "mic1",
    progress: bool = True,
    jobs: int = 1,
) -> AudioCache:
    """The valid cache for these corpora and settings, building it when absent, stale or broken."""
    utts, settings, key, cache_dir = _prepare(roots, cache_dir, sample_rate, trim_db, mic)
    final = cache_dir / key
    if final.is_dir():
        try:
            return AudioCache.open(final)
        except DataError:
            pass
    return _build_and_open(utts, settings, key, cache_dir, progress, jobs)
