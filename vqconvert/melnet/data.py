"""The mel net's training data: a corpus (the trainer's audio cache) encoded by the VQ-VAE, split as the
VQ-VAE's own training split (its validation and held-out utterances stay held out here too). The codes
are kept in the cache directory, keyed by the model, the corpus and the perturbation, so a second run
(another size, more minutes) skips the encoding; the log-mel targets are recomputed (seconds)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from vqconvert.checkpoint import atomic_torch_save
from vqconvert.config import HOP
from vqconvert.data.cache import load_or_build_cache
from vqconvert.data.corpus import split_utterances
from vqconvert.evaluation.selection import train_split_settings
from vqconvert.melnet.train import MelTrainConfig, MelUtt, encode_codes, mel_targets
from vqconvert.model.mel import LogMel

MIN_FRAMES = 8


def model_split(loaded, extra_holdout: Sequence[str] = ()) -> tuple[float, tuple[str, ...]]:
    """(val_fraction, holdout ids/globs) of the VQ-VAE's training run, probe clips included."""
    val_fraction, holdout, _known = train_split_settings(loaded)
    probe = ((loaded.meta or {}).get("train_config") or {}).get("probe") or ()
    return val_fraction, tuple(holdout) + tuple(probe) + tuple(extra_holdout)


def load_corpus(
    loaded,
    corpora: Sequence[str],
    cache_dir: str | Path,
    cfg: MelTrainConfig,
    holdout: Sequence[str] = (),
    log: Callable[[str], None] = lambda _m: None,
    progress: bool = True,
) -> tuple[list[MelUtt], list[MelUtt], list[str]]:
    """(train, val, names of the speakers trained on): every utterance of a speaker the model knows, long
    enough to give codes; others are counted in the log and left out."""
    cache = load_or_build_cache(list(corpora), cache_dir, progress=progress)
    known = [i for i, e in enumerate(cache.utterances) if e.speaker in loaded.speakers]
    if len(known) < len(cache.utterances):
        unknown = sorted({e.speaker for e in cache.utterances} - set(loaded.speakers))
        log(
            f"left out {len(cache.utterances) - len(known)} utterances of {len(unknown)} speakers the model does "
            f"not know ({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''})"
        )
    codes = _encoded(loaded, cache, known, cache_dir, cfg, log)
    keep = [i for i in known if codes[i][0].numel() >= MIN_FRAMES]
    log_mel = LogMel(cache.sample_rate, loaded.config.mel_bins or 80, HOP)
    mels = mel_targets([codes[i] for i in keep], (hop_audio(cache, i) for i in keep), log_mel)
    utts = {
        cache.utterances[i].key: MelUtt(
            codes[i], m, loaded.speakers.index(cache.utterances[i].speaker), cache.utterances[i].utt_id
        )
        for i, m in zip(keep, mels, strict=True)
    }
    val_fraction, held = model_split(loaded, holdout)
    tr, va = split_utterances([cache.utterances[i] for i in keep], val_fraction, holdout=held)
    train, val = [utts[e.key] for e in tr], [utts[e.key] for e in va]
    trained = sorted({cache.utterances[i].speaker for i in keep}, key=loaded.speakers.index)
    return train, val, trained


def hop_audio(cache, i: int) -> np.ndarray:
    """Utterance `i` of the audio cache as float32, cut to a whole number of hops."""
    a = np.asarray(cache.audio(i), np.float32)
    return a[: len(a) // HOP * HOP]


def _encoded(loaded, cache, idx: list[int], cache_dir, cfg: MelTrainConfig, log) -> dict[int, list[torch.Tensor]]:
    """{utterance index: [(F,) int16 codes, unshifted first]}, from the codes cache or encoded now."""
    key = f"{loaded.fingerprint}:{cache.key}:{cfg.copies}:{cfg.perturb_semitones}:{cfg.seed}"
    path = Path(cache_dir) / f"melnet-codes-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            by_key = dict(zip(saved["keys"], saved["codes"], strict=True))
            if all(cache.utterances[i].key in by_key for i in idx):
                log(f"codes from {path}")
                return {i: by_key[cache.utterances[i].key] for i in idx}
        except Exception:  # noqa: BLE001 - a stale or broken codes cache is rebuilt
            pass
    seconds = sum(cache.utterances[i].length for i in idx) / cache.sample_rate
    log(f"encoding {len(idx)} utterances ({seconds / 3600:.2f} h) x {1 + cfg.copies} with the model")
    out, t0 = {}, time.monotonic()
    for n, i in enumerate(idx):
        rng = np.random.default_rng([cfg.seed, i])
        out[i] = encode_codes(loaded.model, hop_audio(cache, i), cfg.copies, cfg.perturb_semitones, rng)
        if (n + 1) % 250 == 0:
            log(f"encoded {n + 1}/{len(idx)} ({time.monotonic() - t0:.0f} s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"keys": [cache.utterances[i].key for i in idx], "codes": [out[i] for i in idx]}, path)
    return out
