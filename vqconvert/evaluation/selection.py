"""What is evaluated: the model's training split settings, the utterances picked from it, the target
voices, and each source loaded and cropped as the trainer would."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vqconvert.audio import audio_info, load_audio, trim_silence
from vqconvert.config import HOP, TrainConfig
from vqconvert.errors import AudioError, VQConvertError
from vqconvert.evaluation.options import TRIM_DB

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel
    from vqconvert.data.corpus import Utterance


def unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def train_split_settings(loaded: LoadedModel) -> tuple[float, tuple[str, ...], bool]:
    """(val_fraction, holdout, known): from the checkpoint's train_config, else TrainConfig's defaults."""
    tc = (loaded.meta or {}).get("train_config")
    if not tc:
        d = TrainConfig()
        return d.val_fraction, tuple(d.holdout), False
    cfg = TrainConfig.from_dict(tc)
    return cfg.val_fraction, tuple(cfg.holdout), True


def training_roots(loaded: LoadedModel) -> list[str]:
    tc = (loaded.meta or {}).get("train_config") or {}
    return [str(r) for r in tc.get("data") or []]


def _duration(u: Utterance) -> float:
    try:
        return float(audio_info(u.path)["duration"])
    except (VQConvertError, OSError):
        return math.inf


def select_utterances(
    utts: Sequence[Utterance], limit: int, max_seconds: float, sources: Sequence[str] = ()
) -> list[Utterance]:
    """`limit` utterances (0 = all), round-robin over speakers ordered by a hash of their names; within a
    speaker, ones with a transcript that fit whole in `max_seconds` first (by file header), then by a hash
    of the key. Deterministic; reads headers only of the speakers it visits."""
    by_spk: dict[str, list] = defaultdict(list)
    for u in utts:
        if not sources or u.speaker in sources:
            by_spk[u.speaker].append(u)
    speakers = sorted(by_spk, key=lambda s: (unit_hash(f"speaker/{s}"), s))
    if not limit or limit >= sum(len(v) for v in by_spk.values()):
        return sorted((u for s in speakers for u in by_spk[s]), key=lambda u: (u.speaker, u.utt_id))
    queues: dict[str, list] = {}
    chosen: list = []
    rnd = 0
    while len(chosen) < limit:
        took = False
        for s in speakers:
            if s not in queues:
                queues[s] = sorted(
                    by_spk[s],
                    key=lambda u: (not u.text, _duration(u) > max_seconds, unit_hash(u.key), u.utt_id),
                )
            if rnd < len(queues[s]):
                chosen.append(queues[s][rnd])
                took = True
                if len(chosen) >= limit:
                    break
        if not took:
            break
        rnd += 1
    return chosen


def prepare_audio(
    path: str | Path, sample_rate: int, max_seconds: float | None, hop: int = HOP
) -> tuple[np.ndarray, bool, float]:
    """Load, trim silence (as the trainer) and crop to `max_seconds` and whole frames.
    -> (audio, cropped, trimmed seconds). AudioError when less than one frame is left."""
    audio = trim_silence(load_audio(path, sample_rate), top_db=TRIM_DB, sample_rate=sample_rate)
    full = audio.shape[0]
    limit = full if max_seconds is None else min(full, int(max_seconds * sample_rate))
    n = (limit // hop) * hop
    if n == 0:
        raise AudioError(f"{path}: shorter than one {hop}-sample frame after trimming silence")
    cropped = limit < full  # dropping < hop trailing samples to whole frames does not count
    return np.ascontiguousarray(audio[:n]), cropped, full / sample_rate


def default_targets(speakers: Sequence[str], candidates: Sequence[str], k: int) -> list[str]:
    """k target voices spread evenly over `candidates` (the model's speakers with audio in the data, in
    the model's order), else over all of the model's speakers."""
    pool = [s for s in speakers if s in set(candidates)] or list(speakers)
    k = max(0, min(k, len(pool)))
    return [pool[int((i + 0.5) * len(pool) / k)] for i in range(k)]
