"""The data of one training run: the memory-mapped audio cache, the train / validation split (held-out
and probe clips never trained on), fixed-length crops, and the batch of every step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from vqconvert.config import HOP, TrainConfig
from vqconvert.data.cache import load_or_build_cache
from vqconvert.data.corpus import split_utterances
from vqconvert.data.dataset import CropDataset, sampling_indices


class TrainData:
    """Crops of the corpora in `cfg.data` for process `rank` of `world`, as (audio (B, crop), speaker
    (B,)) batches on `device`. The main process builds the cache; the others wait for it and load it."""

    def __init__(
        self, cfg: TrainConfig, device: torch.device, rank: int = 0, world: int = 1, progress: bool = True
    ) -> None:
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        if rank == 0:
            cache = load_or_build_cache(cfg.data, cfg.cache_dir, progress=progress)
        if world > 1:
            torch.distributed.barrier()
        if rank != 0:
            cache = load_or_build_cache(cfg.data, cfg.cache_dir, progress=False)
        self.cache = cache
        self.speakers = list(cache.speakers)
        self.spk_index = {s: i for i, s in enumerate(self.speakers)}
        pos = {id(u): i for i, u in enumerate(cache.utterances)}
        holdout = tuple(cfg.holdout) + tuple(cfg.probe)  # probe clips are never trained on
        train_ix, val_ix = split_utterances(cache.utterances, cfg.val_fraction, holdout=holdout)
        self.train_ix = [pos[id(u)] for u in train_ix]
        self.val_ix = [pos[id(u)] for u in val_ix]
        self.crop = int(round(cfg.crop_seconds * cache.sample_rate / HOP)) * HOP
        visits = sampling_indices(cache, self.train_ix, cfg.sample_by)
        self.train_set = CropDataset(cache, visits, self.crop, self.spk_index, seed=cfg.seed)

    @property
    def seconds_per_step(self) -> float:
        """Seconds of audio one step trains on, over all processes."""
        return self.cfg.batch_size * self.world * self.crop / self.cache.sample_rate

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch for `step` and this rank: a pure function of (seed, step, rank), so resume is exact."""
        b = self.cfg.batch_size
        base = (step * self.world + self.rank) * b
        return self._stack([self.train_set[base + j] for j in range(b)])

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed held-out crops, the same at every validation: up to `cfg.val_batches` batches."""
        b = self.cfg.batch_size
        rng = np.random.default_rng(12345)
        ix = rng.choice(self.val_ix, size=min(len(self.val_ix), self.cfg.val_batches * b), replace=False)
        val_set = CropDataset(self.cache, list(ix), self.crop, self.spk_index, seed=999, shuffle=False)
        for start in range(0, len(ix), b):
            yield self._stack([val_set[j] for j in range(start, min(len(ix), start + b))])

    def _stack(self, items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        audio = torch.stack([a for a, _ in items]).to(self.device)
        return audio, torch.stack([s for _, s in items]).to(self.device)
