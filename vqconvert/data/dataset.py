"""Training crops from an AudioCache."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vqconvert.config import HOP, SAMPLINGS
from vqconvert.data.cache import AudioCache


def _check_crop(crop: int) -> None:
    if crop <= 0 or crop % HOP:
        raise ValueError(f"crop must be a positive multiple of {HOP} samples, got {crop}")


class CropDataset(Dataset):
    """Random fixed-length crops: item n -> (audio FloatTensor (crop,), speaker LongTensor ()).

    Items n = 0 .. len(indices) - 1 visit every utterance once, then the next len(indices) items
    visit them all again, and so on. With `shuffle` each such pass takes its own random order
    (a function of seed and pass): `indices` usually come sorted by speaker, and consecutive
    training batches drawn in that order would each hold one speaker for many steps. Without
    `shuffle` item n crops `indices[n % len(indices)]`. The crop position depends only on
    (seed, n, epoch), so a run is reproducible whatever the worker count; call `set_epoch`
    to get new crops. An utterance shorter than `crop` is placed at a random offset inside
    a zero crop (silence before and after), so the model never learns "audio starts at 0".
    """

    def __init__(
        self,
        cache: AudioCache,
        indices: Sequence[int],
        crop: int,
        speaker_index: dict[str, int],
        seed: int = 0,
        epoch_size: int | None = None,
        shuffle: bool = True,
    ) -> None:
        _check_crop(crop)
        if len(indices) == 0:
            raise ValueError("CropDataset needs at least one utterance")
        self.cache = cache
        self.indices = list(indices)
        self.crop = crop
        self.speaker_index = speaker_index
        self.seed = seed
        self.epoch_size = epoch_size
        self.epoch = 0
        self.shuffle = shuffle
        self._orders: dict[int, np.ndarray] = {}
        self._speakers = [speaker_index[cache.utterances[i].speaker] for i in self.indices]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.epoch_size if self.epoch_size is not None else len(self.indices)

    def _position(self, n: int) -> int:
        """Item n -> its position in `indices`."""
        size = len(self.indices)
        if not self.shuffle:
            return n % size
        turn = n // size
        order = self._orders.get(turn)
        if order is None:
            if len(self._orders) > 4:  # items are asked for in order: old passes are done with
                self._orders.clear()
            order = self._orders[turn] = np.random.default_rng([self.seed, turn, 1]).permutation(size)
        return int(order[n % size])

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self._position(n)
        i = self.indices[k]
        rng = np.random.default_rng([self.seed, n, self.epoch])
        length = self.cache.utterances[i].length
        if length >= self.crop:
            audio = self.cache.crop(i, int(rng.integers(0, length - self.crop + 1)), self.crop)
        else:
            audio = np.zeros(self.crop, dtype=np.float32)
            at = int(rng.integers(0, self.crop - length + 1))
            audio[at : at + length] = self.cache.audio(i)
        return torch.from_numpy(audio), torch.tensor(self._speakers[k], dtype=torch.long)


def sampling_indices(cache: AudioCache, indices: Sequence[int], by: str = "utterance") -> list[int]:
    """The utterances one training pass visits, in order.

    "utterance": each once. "duration": each round(length / median length) times (at least once), so
    a corpus of few long clips (LibriSpeech, 12 s each) gets crops in proportion to its audio, not to its
    clip count beside many short ones (synthetic sentences, about 3 s).
    """
    if by not in SAMPLINGS:
        raise ValueError(f"unknown sampling {by!r}: use one of {', '.join(SAMPLINGS)}")
    indices = list(indices)
    if by == "utterance" or not indices:
        return indices
    lengths = np.array([cache.utterances[i].length for i in indices], dtype=np.float64)
    counts = np.maximum(1, np.rint(lengths / np.median(lengths))).astype(int)
    return [i for i, c in zip(indices, counts, strict=True) for _ in range(c)]


def fixed_crops(
    cache: AudioCache, indices: Sequence[int], crop: int, speaker_index: dict[str, int]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Deterministic centre crops for validation: [(audio (crop,), speaker ()), ...].

    Short utterances are centred in a zero crop.
    """
    _check_crop(crop)
    out = []
    for i in indices:
        length = cache.utterances[i].length
        if length >= crop:
            audio = cache.crop(i, (length - crop) // 2, crop)
        else:
            audio = np.zeros(crop, dtype=np.float32)
            at = (crop - length) // 2
            audio[at : at + length] = cache.audio(i)
        speaker = torch.tensor(speaker_index[cache.utterances[i].speaker], dtype=torch.long)
        out.append((torch.from_numpy(audio), speaker))
    return out
