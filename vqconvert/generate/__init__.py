"""Audio generation from codes: incremental ("fast") WaveNet sampling.

Each layer keeps a queue of its past inputs, so one sample costs O(layers) instead of O(receptive
field); the local conditioning is projected once per frame (or per block of samples), the speaker folded
into the biases.  Backends:

* ``"c"``: a C kernel runs the whole per-sample loop of a chunk, batched over utterances (fast CPU path);
* ``"torch"``: eager torch, one Python step per sample (fallback and correctness oracle);
* ``"cuda"``: the same step captured in CUDA graphs (one replay per frame of codes).

All backends draw the same uniforms (one seeded generator per utterance, `numpy.random.default_rng(
[seed, i])`) and sample with the same rule (inverse CDF of softmax(logits / T); argmax when greedy), so a
seed fixes the audio of each backend and the backends agree up to float rounding.  How to sample is one
`vqconvert.sampling.SamplingOptions`; without one, the model's own distribution (temperature 1.0).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from vqconvert.generate._core import Weights, check_inputs, drive, temperature_args, to_audio
from vqconvert.generate.conditioning import Conditioner
from vqconvert.generate.reference import TorchEngine
from vqconvert.sampling import BACKENDS, MODEL_DISTRIBUTION, SamplingOptions

if TYPE_CHECKING:
    from vqconvert.model import VQVAE

__all__ = ["BACKENDS", "available_backends", "engine_for", "generate", "generate_stream"]


def available_backends() -> list[str]:
    """Backends usable here (building the C kernel once if it is missing)."""
    from vqconvert.generate import clib

    out = []
    if clib.load() is not None:
        out.append("c")
    out.append("torch")
    if torch.cuda.is_available():
        out.append("cuda")
    return out


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def _resolve(model, w: Weights, sampling: SamplingOptions) -> str:
    """The backend that runs: the asked one, or what "auto" (and an unusable "c") falls back to."""
    from vqconvert.generate import clib, fast

    backend = sampling.backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "cuda":
        if torch.device(sampling.device or "cuda").type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("backend 'cuda' needs a CUDA GPU, and none is available")
        return "cuda"
    if backend == "auto" and _model_device(model).type == "cuda":
        return "cuda"
    if backend in ("auto", "c"):
        if not fast.supported(w):
            if backend == "c":
                warnings.warn(
                    "the C generator needs channel counts divisible by 8 (16 for the gate); using the torch generator",
                    clib.GeneratorWarning,
                    stacklevel=3,
                )
            return "torch"
        if clib.load() is None:
            clib.warn_fallback()
            return "torch"
        return "c"
    return "torch"


def engine_for(
    model: VQVAE, codes: list[torch.Tensor], speakers: list[int], sampling: SamplingOptions
) -> tuple[Any, list[int], str]:
    """(engine, samples per utterance, backend name) for checked inputs: what `drive` advances."""
    from vqconvert.generate import clib

    w = Weights.from_model(model)
    name = _resolve(model, w, sampling)
    inv_temp, greedy = temperature_args(sampling.temperature, sampling.greedy)
    if name == "c":
        from vqconvert.generate.fast import CEngine

        cond = Conditioner(model, codes, speakers, w, perm=CEngine.cond_perm(w))
        eng = CEngine(clib.load(), w, cond, len(codes), inv_temp, greedy, sampling.threads, sampling.fp16)
    elif name == "cuda":
        from vqconvert.generate.cuda import GraphEngine

        dev = _model_device(model)
        device = sampling.device or (dev if dev.type == "cuda" else torch.device("cuda"))
        cond = Conditioner(model, codes, speakers, w)
        eng = GraphEngine(w, cond, len(codes), inv_temp, greedy, device=device)
    else:
        cond = Conditioner(model, codes, speakers, w)
        eng = TorchEngine(w, cond, len(codes), inv_temp, greedy)
    return eng, cond.lengths, name


def generate_stream(
    model: VQVAE,
    codes: list[torch.Tensor],
    speakers: list[int],
    sampling: SamplingOptions = MODEL_DISTRIBUTION,
    *,
    chunk_samples: int = 16000,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[list[torch.Tensor]]:
    """Decode code sequences to audio, yielding per utterance the next piece of up to `chunk_samples`
    samples at each step (an empty tensor for an utterance that has finished).

    codes: per utterance a (F_i,) tensor of code indices (lengths may differ); speakers: per utterance
    the speaker index.  Pieces are float32 CPU tensors in [-1, 1]; an utterance has F_i * hop samples
    in all.  Memory stays bounded by the chunk and a 1024-sample conditioning block, whatever the length of
    the audio.  progress(done_samples, total_samples) is called as work advances.
    """
    codes, speakers = check_inputs(model, codes, speakers)
    inv_temp, greedy = temperature_args(sampling.temperature, sampling.greedy)
    eng, lengths, _ = engine_for(model, codes, speakers, sampling)
    Q = model.cfg.mu_classes
    for idx, _ in drive(
        eng,
        lengths,
        chunk_samples=chunk_samples,
        inv_temp=inv_temp,
        greedy=greedy,
        seed=sampling.seed,
        progress=progress,
    ):
        yield [to_audio(i, Q) for i in idx]


def generate(
    model: VQVAE,
    codes: list[torch.Tensor],
    speakers: list[int],
    sampling: SamplingOptions = MODEL_DISTRIBUTION,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[torch.Tensor]:
    """`generate_stream` in one piece: per utterance a float32 CPU tensor (F_i * hop,) in [-1, 1]."""
    parts: list[list[torch.Tensor]] = [[] for _ in codes]
    for pieces in generate_stream(model, codes, speakers, sampling, progress=progress):
        for part, piece in zip(parts, pieces, strict=True):
            part.append(piece)
    return [torch.cat(p) if p else torch.zeros(0) for p in parts]
