"""Inference as a library: chunked encoding of long audio, the choice of speakers, voice transfer.

No CLI code here: `vqconvert.cli.infer_cmd` turns these into the `encode`, `decode` and `transfer`
commands. Decoding (batched, in memory or streamed to files) is `vqconvert.decoding`.
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vqconvert.audio import load_audio
from vqconvert.codes import CodesFile
from vqconvert.config import HOP
from vqconvert.errors import AudioError, SpeakerError
from vqconvert.sampling import SamplingOptions

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel
    from vqconvert.model import VQVAE

DEFAULT_CHUNK_FRAMES = 2500  # 10 s at 250 frames/s per encoder call


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


def pad_to_hop(audio: np.ndarray, hop: int = HOP) -> np.ndarray:
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


def load_and_encode(
    loaded: LoadedModel,
    source: str | Path,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, int]:
    """Read an audio file ("-" = stdin) at the model's rate and encode it: (codes `(F,)`, samples T).
    AudioError for unreadable audio."""
    audio = load_audio(source, loaded.config.sample_rate)
    return encode_audio(loaded.model, audio, chunk_frames=chunk_frames, device=device), int(audio.shape[0])


def chunk_frames_for(loaded: LoadedModel, seconds: float) -> int:
    """An encoder chunk of `seconds` in code frames (at least one)."""
    return max(1, round(seconds * loaded.config.sample_rate / loaded.config.hop))


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
    codes, samples = load_and_encode(loaded, source, chunk_frames=chunk_frames, device=device)
    name = "<stdin>" if str(source) == "-" else Path(source).name
    return CodesFile(
        indices=codes.numpy(),
        codebook_size=cfg.codebook_size,
        fingerprint=loaded.fingerprint,
        sample_rate=cfg.sample_rate,
        hop=cfg.hop,
        samples=samples,
        speaker=speaker if speaker is not None else guess_speaker(source, loaded.speakers),
        source=name,
    )


# -- speakers and voice transfer ----------------------------------------------------------------------


def decode_speaker(loaded: LoadedModel, codes: CodesFile, speaker: str | None = None) -> int:
    """The voice to decode `codes` in: `speaker` (a name or an index), else the source speaker the codes
    record. SpeakerError when neither is one of the model's speakers."""
    if speaker is not None:
        return loaded.speaker_index(speaker)
    if codes.speaker is None:
        raise SpeakerError("the codes record no source speaker; pass --speaker NAME")
    if codes.speaker not in loaded.speakers:
        raise SpeakerError(
            f"the codes' source speaker {codes.speaker!r} is not one of this model's speakers; pass --speaker NAME"
        )
    return loaded.speakers.index(codes.speaker)


def transfer_targets(loaded: LoadedModel, names: Sequence[str]) -> list[tuple[str, int]]:
    """Target voices (names or indices, repeats dropped) -> (label, speaker index): the label is the name
    as given, or the model's name for an index. SpeakerError for a voice the model does not know."""
    out = []
    for name in dict.fromkeys(names):
        index = loaded.speaker_index(name)
        out.append((loaded.speakers[index] if name.isdigit() else name, index))
    return out


def convert(
    loaded: LoadedModel,
    audio: np.ndarray,
    speakers: Sequence[str | int],
    sampling: SamplingOptions = SamplingOptions(),
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    batch_size: int = 8,
) -> list[np.ndarray]:
    """Voice transfer in memory: `(T,)` audio at the model's rate -> one `(T,)` waveform per target
    speaker (a name or an index). SpeakerError for names the model does not know."""
    from vqconvert.decoding import decode_codes

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise AudioError("no audio to convert (0 samples)")
    codes = encode_audio(loaded.model, audio, chunk_frames=chunk_frames)
    idx = [s if isinstance(s, int) else loaded.speaker_index(s) for s in speakers]
    n = len(idx)
    return decode_codes(loaded.model, [codes] * n, idx, sampling, batch_size=batch_size, samples=[audio.shape[0]] * n)
