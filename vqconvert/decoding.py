"""Decoding as a library: code sequences -> audio in any voice, batched, in memory (`decode_codes`) or
streamed to WAV files (`decode_to_files`). Both run the one batching loop `decode_jobs`; sampling itself
is `vqconvert.generate`, how to sample one `SamplingOptions`."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from vqconvert.errors import CodesError
from vqconvert.sampling import SamplingOptions

if TYPE_CHECKING:
    from vqconvert.model import VQVAE

DEFAULT_CHUNK_SAMPLES = 16_000  # samples generated between two writes when streaming

# progress(batch, done_samples, total_samples) of the batch being generated (done = 0 when it starts)
Progress = Callable[[Sequence["DecodeJob"], int, int], None]


@dataclass
class DecodeJob:
    """One utterance to generate: codes `(F,)`, a speaker index, where to write it."""

    codes: torch.Tensor
    speaker: int
    output: str | Path | None = None  # "-" = stdout; None = in memory
    samples: int | None = None  # keep this many samples (the length before padding); None = F * hop
    key: Any = None  # the caller's tag, handed back with the result


class Sink(Protocol):
    """Where one job's audio goes, piece by piece."""

    def write(self, piece: torch.Tensor) -> None: ...


# open_sink(job, samples to keep) -> a context manager giving the job's Sink; it commits on a clean exit
SinkOpener = Callable[[DecodeJob, int], contextlib.AbstractContextManager]


def decode_jobs(
    model: VQVAE,
    jobs: Iterable[DecodeJob],
    sampling: SamplingOptions,
    open_sink: SinkOpener,
    *,
    batch_size: int = 1,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    progress: Progress | None = None,
    vocoder: str = "wavenet",
    mel_net: torch.nn.Module | None = None,
) -> Iterator[tuple[DecodeJob, Exception | None]]:
    """Generate `jobs` (taken lazily) `batch_size` at a time into their sinks; yields, batch by batch
    and in order, (job, None) when its sink committed, (job, error) when not.

    A job whose sink does not open is left out of its batch; a failure of the sampler fails the whole
    batch (every sink exits with the error: temp files are removed), later batches still run. Batch b
    samples with `sampling.for_batch(b)`. vocoder "griffin-lim" renders the model's mel head instead of
    sampling the WaveNet (vqconvert.vocoder; each utterance in one piece): the log-mel of `mel_net` when
    given (a vqconvert.melnet.CodeMelNet for this model's codes), else of the model's head.
    """
    from vqconvert.generate import generate_stream
    from vqconvert.vocoder import griffin_lim_stream

    hop = model.cfg.hop
    batch_size = max(1, int(batch_size))
    pending = iter(jobs)
    for number in itertools.count():
        batch = list(itertools.islice(pending, batch_size))
        if not batch:
            return
        results: dict[int, Exception | None] = {}
        opened: dict[int, tuple[Any, Sink, int]] = {}  # i -> (context manager, sink, samples to keep)
        for i, job in enumerate(batch):
            n = job.codes.numel() * hop if job.samples is None else min(job.samples, job.codes.numel() * hop)
            try:
                cm = open_sink(job, n)
                opened[i] = (cm, cm.__enter__(), n)
            except Exception as err:  # noqa: BLE001 - reported per job
                results[i] = err
        live = list(opened)
        try:
            if live:
                left = {i: opened[i][2] for i in live}
                report = None
                if progress is not None:
                    progress(batch, 0, sum(batch[i].codes.numel() * hop for i in live))

                    def report(done: int, total: int, batch: list[DecodeJob] = batch) -> None:
                        progress(batch, done, total)

                codes, speakers = [batch[i].codes for i in live], [int(batch[i].speaker) for i in live]
                if vocoder == "griffin-lim":
                    stream = griffin_lim_stream(model, codes, speakers, mel_net)
                else:
                    stream = generate_stream(
                        model, codes, speakers, sampling.for_batch(number), chunk_samples=chunk_samples, progress=report
                    )
                for pieces in stream:
                    for i, piece in zip(live, pieces, strict=False):
                        if piece is None or left[i] <= 0:
                            continue
                        piece = piece.reshape(-1)[: left[i]]
                        opened[i][1].write(piece)
                        left[i] -= piece.shape[0]
        except BaseException as err:
            for i in live:  # the whole batch failed: every sink cleans up
                with contextlib.suppress(Exception):
                    opened[i][0].__exit__(type(err), err, err.__traceback__)
            if not isinstance(err, Exception):
                raise  # KeyboardInterrupt and the like, after the cleanup
            for i in live:
                results[i] = err
        else:
            for i in live:  # each sink commits (a file is renamed into place) on its own
                try:
                    opened[i][0].__exit__(None, None, None)
                except Exception as err:  # noqa: BLE001 - reported per job
                    results[i] = err
        for i, job in enumerate(batch):
            yield job, results.get(i)


def decode_to_files(
    model: VQVAE,
    jobs: Iterable[DecodeJob],
    sampling: SamplingOptions = SamplingOptions(),
    *,
    batch_size: int = 1,
    sample_rate: int | None = None,
    overwrite: bool = False,
    make_parents: bool = False,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    progress: Progress | None = None,
    vocoder: str = "wavenet",
    mel_net: torch.nn.Module | None = None,
) -> Iterator[tuple[DecodeJob, Exception | None]]:
    """`decode_jobs` streaming each job to its WAV (16-bit, atomic; "-" = stdout): memory is bounded by
    `chunk_samples`. `sample_rate` resamples the output (default: the model's); `make_parents` creates
    a missing output directory. A job without code frames fails with CodesError."""
    from vqconvert.audio import open_wav_writer
    from vqconvert.fileio import ensure_parent

    rate = model.cfg.sample_rate
    out_rate = sample_rate or rate

    def open_file(job: DecodeJob, n: int) -> contextlib.AbstractContextManager:
        if job.codes.numel() == 0:
            raise CodesError("no code frames to decode")
        if make_parents:
            ensure_parent(job.output)
        frames = None
        if str(job.output) == "-":
            frames = n if out_rate == rate else int(round(n * out_rate / rate))
        return open_wav_writer(job.output, out_rate, overwrite, source_rate=rate, frames=frames)

    yield from decode_jobs(
        model,
        jobs,
        sampling,
        open_file,
        batch_size=batch_size,
        chunk_samples=chunk_samples,
        progress=progress,
        vocoder=vocoder,
        mel_net=mel_net,
    )


class _Memory(contextlib.AbstractContextManager):
    """An in-memory sink: the pieces of one job."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def __exit__(self, *exc) -> None:
        return None

    def write(self, piece: torch.Tensor) -> None:
        self.parts.append(piece.detach().float().cpu().numpy())

    def audio(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)


def decode_codes(
    model: VQVAE,
    codes: Sequence[torch.Tensor],
    speakers: Sequence[int],
    sampling: SamplingOptions = SamplingOptions(),
    *,
    batch_size: int = 8,
    samples: Sequence[int | None] | None = None,
    progress: Progress | None = None,
    vocoder: str = "wavenet",
    mel_net: torch.nn.Module | None = None,
) -> list[np.ndarray]:
    """In memory: codes `(F_i,)` and speaker indices -> float32 waveforms `(F_i * hop,)` (or trimmed to
    `samples[i]`), `batch_size` utterances per batch (job keys: their indices). Raises the first error."""
    if len(codes) != len(speakers):
        raise ValueError("codes and speakers must have the same length")
    keep = [None] * len(codes) if samples is None else list(samples)
    jobs = [
        DecodeJob(torch.as_tensor(c).long().reshape(-1), int(s), None, n, i)
        for i, (c, s, n) in enumerate(zip(codes, speakers, keep, strict=True))
    ]
    sinks: dict[int, _Memory] = {}

    def open_memory(job: DecodeJob, _n: int) -> _Memory:
        sinks[job.key] = _Memory()
        return sinks[job.key]

    results = decode_jobs(
        model,
        jobs,
        sampling,
        open_memory,
        batch_size=batch_size,
        progress=progress,
        vocoder=vocoder,
        mel_net=mel_net,
    )
    for _job, err in results:
        if err is not None:
            raise err
    return [sinks[i].audio() for i in range(len(jobs))]
