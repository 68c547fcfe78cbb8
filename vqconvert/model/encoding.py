"""The one definition of encoding: audio -> code indices, exact however the audio is chunked.

`encode_exact` runs the encoder and the nearest-code search in float64, `chunk_frames` frames at a time
with `encoder_context` frames of real audio on both sides (encoded and thrown away), so every kept
frame sees exactly the samples it would see in one piece while memory stays bounded. In float32 the
rounding differences between a chunk and the whole (~1e-8) can flip a near-tie between two codes; in
float64 the codes equal the one-piece codes. `VQVAE.encode`, the CLI's `.vqc` writing, validation and
evaluation all come here; only training's forward pass quantizes in its own precision.
"""

from __future__ import annotations

import copy
import math
import weakref

import torch

DEFAULT_CHUNK_FRAMES = 2500  # 10 s at 250 frames/s per encoder call


def nearest_code(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(N, D) latents, (K, D) codebook (same dtype) -> (N,) index of the nearest code by squared
    Euclidean distance (first index on exact ties)."""
    d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)[None]
    return d.argmin(1)


def encoder_context(model) -> tuple[int, int]:
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


_ENCODERS_64: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _encoder64(model, device: torch.device) -> tuple[torch.nn.Module, torch.Tensor]:
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


@torch.no_grad()
def encode_exact(
    model, audio: torch.Tensor, chunk_frames: int = DEFAULT_CHUNK_FRAMES, device: torch.device | None = None
) -> torch.Tensor:
    """(T,) float audio, T a multiple of the hop -> (T / hop,) LongTensor of codes on `audio`'s device."""
    hop = model.cfg.hop
    if audio.dim() != 1 or audio.shape[0] % hop:
        raise ValueError(f"encode_exact takes (T,) audio with T a multiple of {hop}, got {tuple(audio.shape)}")
    device = device if device is not None else next(model.parameters()).device
    if device.type == "mps":  # no float64 there
        device = torch.device("cpu")
    encoder, codebook = _encoder64(model, device)
    frames = audio.shape[0] // hop
    left, right = encoder_context(model)
    chunk_frames = max(1, int(chunk_frames))

    def run(a0: int, a1: int) -> torch.Tensor:
        piece = audio[a0 * hop : a1 * hop].to(device=device, dtype=torch.float64)
        return nearest_code(encoder(piece[None])[0].transpose(0, 1), codebook)

    if frames <= chunk_frames + left + right:
        out = run(0, frames)
    else:
        parts = []
        for f0 in range(0, frames, chunk_frames):
            f1 = min(frames, f0 + chunk_frames)
            a0, a1 = max(0, f0 - left), min(frames, f1 + right)
            parts.append(run(a0, a1)[f0 - a0 : f1 - a0])
        out = torch.cat(parts)
    return out.long().to(audio.device)
