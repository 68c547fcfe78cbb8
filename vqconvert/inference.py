"""Inference as a library: chunked encoding of long audio, the choice of speakers, voice transfer.

No CLI code here: `vqconvert.cli.infer_cmd` turns these into the `encode`, `decode` and `transfer`
commands. Decoding (batched, in memory or streamed to files) is `vqconvert.decoding`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vqconvert.audio import load_audio
from vqconvert.codes import CodesFile
from vqconvert.config import HOP
from vqconvert.errors import AudioError, SpeakerError
from vqconvert.model.encoding import DEFAULT_CHUNK_FRAMES, encode_exact
from vqconvert.sampling import SamplingOptions

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel
    from vqconvert.model import VQVAE



# -- encoding ---------------------------------------------------------------------------------------


def pad_to_hop(audio: np.ndarray, hop: int = HOP) -> np.ndarray:
    """Zero-pad `(T,)` at the end to a positive multiple of `hop` (a clip shorter than a frame gets one)."""
    t = audio.shape[0]
    target = max(1, math.ceil(t / hop)) * hop
    if target == t:
        return audio
    return np.concatenate([audio, np.zeros(target - t, dtype=audio.dtype)])


@torch.no_grad()
def encode_audio(
    model: VQVAE,
    audio: np.ndarray | torch.Tensor,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """`(T,)` float audio at the model's rate -> `(ceil(T / 64),)` LongTensor of codes (CPU).

    The audio is zero-padded to a whole frame, then encoded by `vqconvert.model.encoding.encode_exact`
    (float64, `chunk_frames` frames at a time with context: the codes equal the one-piece codes).
    """
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    audio = pad_to_hop(np.asarray(audio, dtype=np.float32).reshape(-1), model.cfg.hop)
    dev = torch.device(device) if device is not None else None
    return encode_exact(model, torch.from_numpy(audio), chunk_frames, dev).cpu()


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
