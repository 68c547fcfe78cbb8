"""Measuring how alike voices sound (how the default voice list was chosen)."""

from __future__ import annotations

from collections.abc import Sequence

from vqconvert.config import SAMPLE_RATE
from vqconvert.data.synth.render import render_to_arrays
from vqconvert.data.synth.voices import Voice

MEASURE_TEXTS = (
    "Be cautious in your daily affairs.",
    "Friendship needs a certain parallelism of life, a community of thought, a rivalry of aim.",
    "When you go out into the world, watch for traffic, hold hands, and stick together.",
    "The wages of sin are high but you get your money's worth.",
)


def voice_features(voice: Voice, texts: Sequence[str] = MEASURE_TEXTS) -> dict:
    """Median f0 (Hz, pyin; 0 for unvoiced voices) and mean MFCC 1-19 over non-silent frames."""
    import librosa
    import numpy as np

    audio = np.concatenate(render_to_arrays(voice, texts, SAMPLE_RATE))
    mfcc = librosa.feature.mfcc(y=audio, sr=SAMPLE_RATE, n_mfcc=20, n_fft=512, hop_length=160)
    rms = librosa.feature.rms(y=audio, frame_length=512, hop_length=160)[0]
    n = min(mfcc.shape[1], rms.shape[0])
    loud = rms[:n] > 0.1 * rms.max()
    f0, voiced, _ = librosa.pyin(audio, fmin=50, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=160)
    f0v = f0[voiced & np.isfinite(f0)]
    return {
        "f0": float(np.median(f0v)) if f0v.size > 0.05 * f0.size else 0.0,
        "mfcc": mfcc[1:, :n][:, loud].mean(axis=1).astype(float).tolist(),
        "peak": float(np.abs(audio).max()),
        "seconds": audio.size / SAMPLE_RATE,
    }


def voice_distance(a: dict, b: dict) -> tuple[float, float]:
    """(mean-MFCC Euclidean distance, |f0 difference| in semitones; 24 when one is unvoiced)."""
    import numpy as np

    d = float(np.linalg.norm(np.asarray(a["mfcc"]) - np.asarray(b["mfcc"])))
    if a["f0"] > 0 and b["f0"] > 0:
        st = float(abs(12 * np.log2(a["f0"] / b["f0"])))
    else:
        st = 0.0 if a["f0"] == b["f0"] else 24.0
    return d, st


def measure_voices(voices: Sequence[Voice], texts: Sequence[str] = MEASURE_TEXTS) -> dict[str, dict]:
    """Features of each voice (see `voice_features`), by speaker name."""
    return {v.name: voice_features(v, texts) for v in voices}
