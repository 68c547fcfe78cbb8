"""Audio generation from codes: incremental ("fast") WaveNet sampling.

Each layer keeps a queue of its past inputs, so one sample costs O(layers) instead of O(receptive
field); the local conditioning is projected once per frame (or per block of samples), the speaker folded
into the biases.  Backends:

* ``"c"``: a C kernel runs the whole per-sample loop of a chunk, batched over utterances (fast CPU path);
* ``"torch"``: eager torch, one Python step per sample (fallback and correctness oracle);
* ``"cuda"``: the same step captured in CUDA graphs (one replay per 64-sample frame).

All backends draw the same uniforms (one seeded generator per utterance, `numpy.random.default_rng(
[seed, i])`) and sample with the same rule (inverse CDF of softmax(logits / T); argmax when greedy), so a
seed fixes the audio of each backend and the backends agree up to float rounding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from vqconvert.generate._core import Conditioner, Weights, check_inputs, drive, temperature_args, to_audio
from vqconvert.generate.reference import TorchEngine

if TYPE_CHECKING:
    from vqconvert.model import VQVAE

__all__ = ["available_backends", "generate", "generate_stream", "incremental_logits"]

BACKENDS = ("auto", "c", "torch", "cuda")


def available_backends() -> list[str]:
    """Backends usable here (building the C kernel once if it is missing)."""
    from vqconvert.generate import fast

    out = []
    if fast.load() is not None:
        out.append("c")
    out.append("torch")
    if torch.cuda.is_available():
        out.append("cuda")
    return out


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def _resolve(backend: str, model, w: Weights, opts: dict) -> str:
    from vqconvert.generate import fast

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "cuda":
        if torch.device(opts.get("device") or "cuda").type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("backend 'cuda' needs a CUDA GPU, and none is available")
        return "cuda"
    if backend == "auto" and _model_device(model).type == "cuda":
        return "cuda"
    if backend in ("auto", "c"):
        if not fast.supported(w):
            if backend == "c":
                print(
                    "vqconvert: the C generator needs channel counts divisible by 8 (16 for the gate); "
                    "using the torch generator",
                    file=sys.stderr,
                )
            return "torch"
        if fast.load() is None:
            fast.warn_fallback()
            return "torch"
        return "c"
    return "torch"


def _cuda_device(model) -> torch.device:
    dev = _model_device(model)
    return dev if dev.type == "cuda" else torch.device("cuda")


def _engine(model, codes, speakers, backend: str, inv_temp: float, greedy: bool, opts: dict):
    from vqconvert.generate import fast

    w = Weights.from_model(model)
    name = _resolve(backend, model, w, opts)
    if name == "c":
        cond = Conditioner(model, codes, speakers, w, perm=fast.CEngine.cond_perm(w))
        eng = fast.CEngine(fast.load(), w, cond, len(codes), inv_temp, greedy, **opts)
    elif name == "cuda":
        from vqconvert.generate.cuda import GraphEngine

        cond = Conditioner(model, codes, speakers, w)
        eng = GraphEngine(w, cond, len(codes), inv_temp, greedy, **{"device": _cuda_device(model), **opts})
    else:
        cond = Conditioner(model, codes, speakers, w)
        eng = TorchEngine(w, cond, len(codes), inv_temp, greedy)
    return eng, cond.lengths, name


def generate_stream(
    model: VQVAE,
    codes: list[torch.Tensor],
    speakers: list[int],
    *,
    chunk_samples: int = 16000,
    temperature: float = 1.0,
    greedy: bool = False,
    seed: int | None = None,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    _engine_opts: dict | None = None,
) -> Iterator[list[torch.Tensor]]:
    """Like `generate`, yielding per utterance the next piece of up to `chunk_samples` samples at each
    step (an empty tensor for an utterance that has finished).  Memory stays bounded by the chunk and a
    1024-sample conditioning block, whatever the length of the audio; the concatenated pieces equal
    `generate`'s output for the same arguments."""
    codes, speakers = check_inputs(model, codes, speakers)
    inv_temp, greedy = temperature_args(temperature, greedy)
    eng, lengths, _ = _engine(model, codes, speakers, backend, inv_temp, greedy, _engine_opts or {})
    Q = model.cfg.mu_classes
    for idx, _ in drive(
        eng, lengths, chunk_samples=chunk_samples, inv_temp=inv_temp, greedy=greedy, seed=seed, progress=progress
    ):
        yield [to_audio(i, Q) for i in idx]


def generate(
    model: VQVAE,
    codes: list[torch.Tensor],
    speakers: list[int],
    *,
    temperature: float = 1.0,
    greedy: bool = False,
    seed: int | None = None,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    _engine_opts: dict | None = None,
) -> list[torch.Tensor]:
    """Decode code sequences to audio.

    codes: per utterance a (F_i,) tensor of code indices (lengths may differ); speakers: per utterance
    the speaker index.  Returns per utterance a float32 CPU tensor (F_i * 64,) in [-1, 1].
    temperature scales the logits before sampling; greedy takes the argmax.  The same seed and backend
    give the same samples.  backend: "auto" (cuda if the model is on CUDA, else c if it builds, else
    torch), "c", "torch" or "cuda".  progress(done_samples, total_samples) is called as work advances.
    """
    codes, speakers = check_inputs(model, codes, speakers)
    inv_temp, greedy = temperature_args(temperature, greedy)
    eng, lengths, _ = _engine(model, codes, speakers, backend, inv_temp, greedy, _engine_opts or {})
    parts: list[list[np.ndarray]] = [[] for _ in codes]
    for idx, _ in drive(
        eng, lengths, chunk_samples=16000, inv_temp=inv_temp, greedy=greedy, seed=seed, progress=progress
    ):
        for i, a in enumerate(idx):
            parts[i].append(a)
    Q = model.cfg.mu_classes
    return [to_audio(np.concatenate(p) if p else np.zeros(0, np.int32), Q) for p in parts]


def incremental_logits(
    model: VQVAE,
    codes: list[torch.Tensor],
    speakers: list[int],
    audio: list[torch.Tensor],
    *,
    backend: str = "torch",
    chunk_samples: int = 1 << 30,
    _engine_opts: dict | None = None,
) -> list[torch.Tensor]:
    """Run the incremental step of `backend` teacher-forced on `audio` (per utterance (F_i * 64,) in
    [-1, 1]) and return per utterance its logits (Q, F_i * 64): the same quantity as
    `model.decode_logits` (tests check they agree)."""
    from vqconvert.audio import mu_law_encode

    codes, speakers = check_inputs(model, codes, speakers)
    Q = model.cfg.mu_classes
    forced = [mu_law_encode(torch.as_tensor(a).reshape(-1).float().cpu(), Q).numpy().astype(np.int32) for a in audio]
    eng, lengths, name = _engine(model, codes, speakers, backend, 1.0, True, _engine_opts or {})
    for f, n in zip(forced, lengths, strict=True):
        if len(f) != n:
            raise ValueError(f"audio has {len(f)} samples, codes need {n}")
    parts: list[list[np.ndarray]] = [[] for _ in codes]
    for _, lg in drive(
        eng, lengths, chunk_samples=chunk_samples, inv_temp=1.0, greedy=True, seed=0, forced=forced, want_logits=True
    ):
        for i, a in enumerate(lg):
            parts[i].append(a)
    return [torch.from_numpy(np.concatenate(p) if p else np.zeros((0, Q), np.float32)).t().contiguous() for p in parts]
