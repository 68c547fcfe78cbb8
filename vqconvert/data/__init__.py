"""Corpora, the preprocessed audio cache and training datasets.

`CropDataset` and `fixed_crops` import torch, so they load on first use.
"""

from vqconvert.data.cache import AudioCache, CacheEntry, build_cache, load_or_build_cache
from vqconvert.data.corpus import (
    Utterance,
    detect_layout,
    read_speaker_info,
    scan_corpora,
    scan_corpus,
    speaker_table,
    split_utterances,
)

__all__ = [
    "AudioCache",
    "CacheEntry",
    "CropDataset",
    "Utterance",
    "build_cache",
    "detect_layout",
    "fixed_crops",
    "load_or_build_cache",
    "read_speaker_info",
    "scan_corpora",
    "scan_corpus",
    "speaker_table",
    "split_utterances",
]


def __getattr__(name: str):
    if name in ("CropDataset", "fixed_crops"):
        from vqconvert.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
