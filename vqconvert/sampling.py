"""How audio is sampled from the decoder: one frozen `SamplingOptions` for the CLI, the evaluation and
the library (`vqconvert.generate`, `vqconvert.inference`). Light on purpose: no torch import, so the CLI
can build its defaults from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vqconvert.config import DEFAULT_TEMPERATURE

BACKENDS = ("auto", "c", "torch", "cuda")
BATCH_SEED_STRIDE = 100_003  # with reseed_batches: batch b samples with seed * BATCH_SEED_STRIDE + b


@dataclass(frozen=True)
class SamplingOptions:
    """The sampling rule, its seed and the engine that runs it.

    temperature scales the logits (0 means greedy); greedy takes the argmax. The same seed, backend and
    batch give the same samples. backend: "auto" (cuda when the model is on CUDA, else c when it builds,
    else torch), "c", "torch" or "cuda". threads / fp16 tune the C engine (None: VQCONVERT_GEN_THREADS /
    VQCONVERT_GEN_WEIGHTS); device is the CUDA engine's (None: the model's GPU). reseed_batches gives
    each batch of a multi-batch decode its own seed (see `for_batch`).

    The default temperature is DEFAULT_TEMPERATURE (the CLI's and the evaluation's);
    `MODEL_DISTRIBUTION` (temperature 1.0) is what `vqconvert.generate` samples without options.
    """

    temperature: float = DEFAULT_TEMPERATURE
    greedy: bool = False
    seed: int | None = None
    backend: str = "auto"
    threads: int | None = None
    fp16: bool | None = None
    device: str | None = None
    reseed_batches: bool = False

    def replace(self, **changes) -> SamplingOptions:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def for_batch(self, index: int) -> SamplingOptions:
        """The options of batch `index` of a decode: the same, or with reseed_batches (and a seed) the
        seed seed * BATCH_SEED_STRIDE + index, so that no two batches share their uniforms."""
        if not self.reseed_batches or self.seed is None:
            return self
        return self.replace(seed=self.seed * BATCH_SEED_STRIDE + index)


MODEL_DISTRIBUTION = SamplingOptions(temperature=1.0)
