"""Inference as a library: chunked encoding of long audio, batched and streamed decoding, voice transfer.

No CLI code here: `vqconvert.cli.infer_cmd` turns these into the `encode`, `decode` and `transfer`
commands. Sampling itself is `vqconvert.generate`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vqconvert.audio import load_audio, open_wav_writer
from vqconvert.codes import CodesFile
from vqconvert.config import DEFAULT_TEMPERATURE
from vqconvert.errors import AudioError, CodesError

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel
    from vqconvert.model import VQVAE

DEFAULT_CHUNK_FRAMES = 2500  # 10 s at 250 frames/s per encoder call
DEFAULT_CHUNK_SAMPLES = 16_000  # samples generated between two writes when streaming to disk


# -- encoding ---------------------------------------------------------------------------------------


def encoder_context(model: VQVAE) -> tuple[int, int]:
    """(left, right): how many frames on each side one encoder output frame depends on.

    Walks the encoder backwards: a frame's span at the latent rate grows by (k - 1) / 2 per residual
    3x3 convolution, then each strided convolution maps output positions [lo, hi] to input samples
    [lo * s - p, hi * s - p + k - 1]. For 6 stride-2 k=4 convs and R residual blocks, frame j reads
    samples [64 (j - R) - 63, 64 (j + R) + 126]: R + 1 frames of context on either side.
    """
    enc = model.encoder
    lo = hi = 0
    for block in enc.res:
        k = block.conv3.kernel_size[0]
        pad = block.conv3.padding[0]
        lo, hi = lo - pad, hi + (k - 1 - pad)
    for conv in reversed(enc.down):
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        lo, hi = lo * s - p, hi * s - p + k - 1
    hop = model.cfg.hop
    return math.ceil(max(0, -lo) / hop), math.ceil(max(0, hi - (hop - 1)) / hop)


def pad_to_hop(audio: np.ndarray, hop: int = 64) -> np.ndarray:
    """Zero-pad `(T,)` at the end to a positive multiple of `hop` (a clip shorter than a frame gets one)."""
    t = audio.shape[0]
    target = max(1, math.ceil(t / hop)) * hop
    if target == t:
        return audio
    return np.concatenate([audio, np.zeros(target - t, dtype=audio.dtype)])


_ENCODERS_64: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _encoder64(model: VQVAE, device: torch.device) -> tuple[torch.nn.Module, torch.Tensor]:
    """A float64 copy of the encoder and codebook on `device`, cached while the weights are unchanged."""
    params = list(model.encoder.parameters()) + [model.quantizer.codebook]
    key = (str(device), tuple((p.data_ptr(), p._version) for p in params))
    hit = _ENCODERS_64.get(model)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    enc = copy.deepcopy(model.encoder).to(device=device, dtype=torch.float64).eval()
    codebook = model.quantizer.codebook.detach().to(device=device, dtype=torch.float64)
    _ENCODERS_64[model] = (key, enc, codebook)
    return enc, codebook


def _nearest(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(1, D, F) latents -> (F,) index of the nearest code (squared distance; first index on exact ties)."""
    flat = z[0].transpose(0, 1)
    d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)[None]
    return d.argmin(1)


@torch.no_grad()
def encode_audio(
    model: VQVAE,
    audio: np.ndarray | torch.Tensor,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """`(T,)` float audio at the model's rate -> `(ceil(T / 64),)` LongTensor of codes (CPU).

    Long audio is encoded `chunk_frames` frames at a time, each chunk with `encoder_context` frames of
    real audio on both sides that are encoded and thrown away, so every kept frame sees exactly the
    samples it would see in the whole file while memory stays bounded. The encoder and the nearest-code
    search run in float64: in float32, the rounding differences between a chunk and the whole file
    (~1e-8) can flip a near-tie between two codes; in float64 the codes equal the whole-file codes.
    (They can differ from the float32 `VQVAE.encode` at such near-ties, where either code is as good.)
    """
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    hop = model.cfg.hop
    audio = pad_to_hop(np.asarray(audio, dtype=np.float32).reshape(-1), hop)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if device.type == "mps":  # no float64 there
        device = torch.device("cpu")
    encoder, codebook = _encoder64(model, device)
    frames = audio.shape[0] // hop
    left, right = encoder_context(model)
    chunk_frames = max(1, int(chunk_frames))
    x = torch.from_numpy(audio)

    def run(a0: int, a1: int) -> torch.Tensor:
        piece = x[a0 * hop : a1 * hop].to(device=device, dtype=torch.float64)
        return _nearest(encoder(piece[None]), codebook).cpu()

    if frames <= chunk_frames + left + right:
        return run(0, frames).long()
    out = []
    for f0 in range(0, frames, chunk_frames):
        f1 = min(frames, f0 + chunk_frames)
        a0, a1 = max(0, f0 - left), min(frames, f1 + right)
        out.append(run(a0, a1)[f0 - a0 : f1 - a0])
    return torch.cat(out).long()


def guess_speaker(path: str | Path | None, speakers: Sequence[str]) -> str | None:
    """The source speaker when a corpus path names one the model knows: the parent directory
    (`p225/p225_001.wav`) or the file-name prefix before "_" (`p225_001.wav`); else None."""
    if path is None or str(path) == "-":
        return None
    p = Path(path)
    for cand in (p.parent.name, p.stem.split("_")[0]):
        if cand and cand in speakers:
            return cand
    return None


def encode_file(
    loaded: LoadedModel,
    source: str | Path,
    *,
    speaker: str | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
) -> CodesFile:
    """Read an audio file ("-" = stdin) and encode it into a CodesFile for `loaded`.

    `speaker` is recorded as the source speaker; by default it is guessed from the path
    (`guess_speaker`). AudioError for unreadable audio.
    """
    cfg = loaded.config
    audio = load_audio(source, cfg.sample_rate)
    codes = encode_audio(loaded.model, audio, chunk_frames=chunk_frames, device=device)
    name = "<stdin>" if str(source) == "-" else Path(source).name
    return CodesFile(
        indices=codes.numpy(),
        codebook_size=cfg.codebook_size,
        fingerprint=loaded.fingerprint,
        sample_rate=cfg.sample_rate,
        hop=cfg.hop,
        samples=int(audio.shape[0]),
        speaker=speaker if speaker is not None else guess_speaker(source, loaded.speakers),
        source=name,
    )


# -- decoding ---------------------------------------------------------------------------------------


@dataclass
class DecodeJob:
    """One utterance to generate: codes `(F,)`, a speaker index, where to write it."""

    codes: torch.Tensor
    speaker: int
    output: str | Path  # "-" = stdout
    samples: int | None = None  # keep this many samples (the length before padding); None = F * hop
    key: Any = None  # the caller's tag, handed back with the result


def _gen_kwargs(temperature: float, greedy: bool, seed: int | None, backend: str) -> dict:
    return {"temperature": temperature, "greedy": greedy, "seed": seed, "backend": backend}


def decode_to_files(
    model: VQVAE,
    jobs: Sequence[DecodeJob],
    *,
    batch_size: int = 1,
    sample_rate: int | None = None,
    overwrite: bool = False,
    temperature: float = DEFAULT_TEMPERATURE,
    greedy: bool = False,
    seed: int | None = None,
    backend: str = "auto",
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[DecodeJob, Exception | None]]:
    """Generate `jobs` `batch_size` at a time, streaming each to its WAV; yields (job, None) when
    written, (job, error) when not (its temp file removed). Memory is bounded by `chunk_samples`.

    Several jobs in a batch go through one `generate_stream` call; a failure of the call fails its
    whole batch, later batches still run. `sample_rate` resamples the output (default: the model's).
    With `seed`, each batch is sampled with that seed: reproducible for the same batch size.
    `progress(done_samples, total_samples)` is handed to the sampler, per batch.
    """
    from vqconvert.generate import generate_stream

    rate = model.cfg.sample_rate
    out_rate = sample_rate or rate
    hop = model.cfg.hop
    batch_size = max(1, int(batch_size))
    for start in range(0, len(jobs), batch_size):
        batch = list(jobs[start : start + batch_size])
        results: dict[int, Exception | None] = {}
        for i, job in enumerate(batch):
            if job.codes.numel() == 0:
                results[i] = CodesError("no code frames to decode")
        opened: dict[int, tuple[Any, Any, int]] = {}  # i -> (context manager, writer, samples to keep)
        for i, job in enumerate(batch):
            if i in results:
                continue
            n = job.codes.numel() * hop
            if job.samples is not None:
                n = min(job.samples, n)
            frames = None
            if str(job.output) == "-":
                frames = n if out_rate == rate else int(round(n * out_rate / rate))
            cm = open_wav_writer(job.output, out_rate, overwrite, source_rate=rate, frames=frames)
            try:
                opened[i] = (cm, cm.__enter__(), n)
            except Exception as err:  # noqa: BLE001 - reported per job
                results[i] = err
        live = list(opened)
        try:
            if live:
                left = {i: opened[i][2] for i in live}
                stream = generate_stream(
                    model,
                    [batch[i].codes for i in live],
                    [int(batch[i].speaker) for i in live],
                    chunk_samples=chunk_samples,
                    progress=progress,
                    **_gen_kwargs(temperature, greedy, seed, backend),
                )
                for pieces in stream:
                    for i, piece in zip(live, pieces, strict=False):
                        if piece is None or left[i] <= 0:
                            continue
                        piece = piece.reshape(-1)[: left[i]]
                        opened[i][1].write(piece)
                        left[i] -= piece.shape[0]
        except BaseException as err:
            # the whole batch failed: every writer removes its temp file
            for i in live:
                with contextlib.suppress(Exception):
                    opened[i][0].__exit__(type(err), err, err.__traceback__)
            if not isinstance(err, Exception):
                raise  # KeyboardInterrupt and the like, after the cleanup
            for i in live:
                results[i] = err
        else:
            for i in live:  # each output is committed (renamed into place) on its own
                try:
                    opened[i][0].__exit__(None, None, None)
                except Exception as err:  # noqa: BLE001 - reported per job
                    results[i] = err
        for i, job in enumerate(batch):
            yield job, results.get(i)


def decode_codes(
    model: VQVAE,
    codes: Sequence[torch.Tensor],
    speakers: Sequence[int],
    *,
    batch_size: int = 8,
    samples: Sequence[int | None] | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    greedy: bool = False,
    seed: int | None = None,
    backend: str = "auto",
) -> list[np.ndarray]:
    """In memory: codes `(F_i,)` and speaker indices -> float32 waveforms `(F_i * hop,)` (or trimmed to
    `samples[i]`), `batch_size` utterances per `generate` call."""
    from vqconvert.generate import generate

    if len(codes) != len(speakers):
        raise ValueError("codes and speakers must have the same length")
    out: list[np.ndarray] = []
    for start in range(0, len(codes), max(1, batch_size)):
        c = [torch.as_tensor(x).long().reshape(-1) for x in codes[start : start + batch_size]]
        s = [int(x) for x in speakers[start : start + batch_size]]
        for wav in generate(model, c, s, **_gen_kwargs(temperature, greedy, seed, backend)):
            out.append(wav.detach().float().cpu().numpy())
    if samples is not None:
        out = [w if n is None else w[:n] for w, n in zip(out, samples, strict=True)]
    return out


def convert(
    loaded: LoadedModel,
    audio: np.ndarray,
    speakers: Sequence[str | int],
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    **decode_kwargs,
) -> list[np.ndarray]:
    """Voice transfer in memory: `(T,)` audio at the model's rate -> one `(T,)` waveform per target
    speaker (a name or an index). SpeakerError for names the model does not know."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise AudioError("no audio to convert (0 samples)")
    codes = encode_audio(loaded.model, audio, chunk_frames=chunk_frames)
    idx = [s if isinstance(s, int) else loaded.speaker_index(s) for s in speakers]
    return decode_codes(loaded.model, [codes] * len(idx), idx, samples=[audio.shape[0]] * len(idx), **decode_kwargs)
