"""Metrics on signals and codes: codebook usage and bitrates, teacher-forced NLL, mel-cepstral distortion
with DTW, and the noise controls the judges are asked about."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vqconvert.codes import bitrate
from vqconvert.evaluation.dsp import mel_filterbank, noise_clips, power_frames
from vqconvert.model.mulaw import mu_law_encode
from vqconvert.stats import code_counts, entropy_bits, perplexity


def codebook_stats(codes: Sequence[torch.Tensor | np.ndarray], codebook_size: int, sample_rate: int, hop: int) -> dict:
    """Usage of the codebook over code sequences: used / K, perplexity, nominal and entropy-coded rate."""
    counts = code_counts(codes, codebook_size)
    frames = int(counts.sum())
    h = entropy_bits(counts)
    rate = sample_rate / hop
    used = int((counts > 0).sum())
    return {
        "K": int(codebook_size),
        "frames": frames,
        "used": used,
        "used_fraction": used / codebook_size,
        "perplexity": perplexity(counts) if frames else None,
        "entropy_bits": h if frames else None,
        "frame_rate_hz": rate,
        "bitrate_bps": bitrate(sample_rate, hop, codebook_size),
        "entropy_bitrate_bps": rate * h if frames else None,
    }


@torch.no_grad()
def bits_per_sample(model, codes: torch.Tensor, speaker: int, audio: np.ndarray | torch.Tensor) -> float:
    """Teacher-forced NLL (bits per sample) of `audio` (T = F * hop) given its codes and speaker."""
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(audio, np.float32)).reshape(1, -1).to(device)
    c = torch.as_tensor(codes).reshape(1, -1).long().to(device)
    logits = model.decode_logits(c, torch.tensor([int(speaker)], device=device), x)
    target = mu_law_encode(x, model.cfg.mu_classes)
    nll = F.cross_entropy(logits.float(), target)
    return float(nll) / math.log(2)


# Mel-cepstrum for MCD: 25 ms Hann windows every 5 ms (n_fft 512 at 16 kHz, centred, zero-padded ends),
# 80 Slaney mel bands 0-8 kHz (librosa's filter bank), natural-log amplitude floored at 1e-5 (power 1e-10)
# per band, DCT-II scaled to cepstral units (an orthonormal DCT over N bands / sqrt(2 N): a log-spectrum
# ripple A cos(...) gives c = A / 2, as a true cepstrum does), coefficients c1..c24 (c0, the energy, is
# left out).
MCD_N_FFT, MCD_WIN, MCD_HOP, MCD_MELS, MCD_ORDER = 512, 400, 80, 80, 24


def mel_cepstrum(audio: np.ndarray, sample_rate: int = 16000, order: int = MCD_ORDER) -> np.ndarray:
    """(T,) audio -> (frames, order) mel-cepstral coefficients c1..c_order (see the constants above)."""
    import scipy.fft

    power = power_frames(audio, MCD_N_FFT, MCD_HOP, MCD_WIN)  # (frames, bins)
    mel = power @ mel_filterbank(sample_rate, MCD_N_FFT, MCD_MELS).T  # (frames, mels)
    log_amp = 0.5 * np.log(np.maximum(mel, 1e-10))
    cep = scipy.fft.dct(log_amp, type=2, norm="ortho", axis=1) / math.sqrt(2 * MCD_MELS)
    return cep[:, 1 : order + 1]


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost monotonic alignment through a (N, M) cost matrix with steps (1,0), (0,1), (1,1);
    returns the (L, 2) index pairs from (0, 0) to (N-1, M-1). Vectorised over anti-diagonals."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):  # i + j = k over the 1-based acc indices
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        best = np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    path = [(n - 1, m - 1)]
    i, j = n, m
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))  # ties prefer the diagonal
        i, j = min(steps, key=lambda s: acc[s])
        path.append((i - 1, j - 1))
    return np.array(path[::-1], dtype=np.int64)


def mcd(ref: np.ndarray, deg: np.ndarray, sample_rate: int = 16000) -> float:
    """Mel-cepstral distortion (dB) of `deg` against `ref` after DTW alignment.

    MCD = 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2) per aligned frame pair, averaged over the DTW path,
    with `mel_cepstrum` (c1..c24 of librosa mel spectra, not SPTK's all-pass mel-cepstrum: values are
    comparable between our runs, not with papers' numbers). 0 for identical signals.
    """
    a, b = mel_cepstrum(ref, sample_rate), mel_cepstrum(deg, sample_rate)
    diff = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
    path = dtw_path(diff)
    k = 10.0 / math.log(10.0) * math.sqrt(2.0)
    return float(k * diff[path[:, 0], path[:, 1]].mean())


def noise_answers(judge, seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0) -> dict:
    """Which reference speaker a SpeakerJudge (with references set) picks for white and pink noise:
    {"white": {"speaker", "similarity"}, "pink": {...}}."""
    out = {}
    for kind, clip in noise_clips(seconds, sample_rate, seed).items():
        name, sim = judge.identify(judge.embed(clip))
        out[kind] = {"speaker": name, "similarity": round(sim, 4)}
    return out
