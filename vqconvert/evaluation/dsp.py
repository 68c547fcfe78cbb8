"""Signal helpers the metrics and the judges share, in numpy: Slaney mel filter banks (librosa's numbers
without importing librosa), framed power spectra, mel spectrograms, and the noise clips used as
controls. No judge and no metric here, so neither imports the other."""

from __future__ import annotations

import math

import numpy as np

_MEL_FB: dict[tuple, np.ndarray] = {}


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    lin = f / (200.0 / 3)
    logstep = math.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / logstep, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular Slaney-normalised filters from 0 Hz to Nyquist: the same matrix
    as `librosa.filters.mel(sr=..., n_fft=..., n_mels=...)`, without importing librosa (seconds here)."""
    key = (sample_rate, n_fft, n_mels)
    if key not in _MEL_FB:
        fft_f = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
        mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
        fdiff = np.diff(mel_f)
        ramps = mel_f[:, None] - fft_f[None, :]
        lower = -ramps[:-2] / fdiff[:-1, None]
        upper = ramps[2:] / fdiff[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper))
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
        _MEL_FB[key] = weights
    return _MEL_FB[key]


def power_frames(audio: np.ndarray, n_fft: int, hop: int, win_length: int | None = None) -> np.ndarray:
    """(T,) audio -> (frames, n_fft // 2 + 1) power spectra: centred frames (zero-padded by n_fft / 2 on
    both ends) every `hop` samples, a periodic Hann window of `win_length` (default n_fft) centred in
    each FFT frame, as librosa's `stft(center=True, pad_mode="constant")`."""
    win_length = n_fft if win_length is None else win_length
    x = np.pad(np.asarray(audio, np.float64).reshape(-1), (n_fft // 2, n_fft // 2))
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    win = np.zeros(n_fft)
    off = (n_fft - win_length) // 2
    win[off : off + win_length] = np.hanning(win_length + 1)[:-1]
    return np.abs(np.fft.rfft(frames * win, axis=1)) ** 2


def mel_spectrogram(wav: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """resemblyzer's `wav_to_mel_spectrogram` in numpy: power mel spectrogram (not log), 25 ms periodic
    Hann windows every 10 ms, centred with zero padding, 40 Slaney mel bands -> (frames, 40) float32
    (librosa >= 0.10's `melspectrogram` defaults, which resemblyzer calls)."""
    n_fft, hop, n_mels = sample_rate * 25 // 1000, sample_rate * 10 // 1000, 40
    power = power_frames(wav, n_fft, hop)
    return (power @ mel_filterbank(sample_rate, n_fft, n_mels).T).astype(np.float32)


def white_noise(seconds: float, sample_rate: int = 16000, seed: int = 0, rms: float = 0.05) -> np.ndarray:
    """Gaussian white noise of `seconds` at `rms`."""
    x = np.random.default_rng(seed).standard_normal(max(1, int(round(seconds * sample_rate))))
    return (rms * x / max(float(np.std(x)), 1e-12)).astype(np.float32)


def pink_noise(seconds: float, sample_rate: int = 16000, seed: int = 0, rms: float = 0.05) -> np.ndarray:
    """1/f power spectrum (amplitude 1/sqrt(f)) noise, made in the frequency domain."""
    n = max(2, int(round(seconds * sample_rate)))
    rng = np.random.default_rng(seed)
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spec *= 1.0 / np.sqrt(np.maximum(f, f[1]))
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return (rms * x / max(float(np.std(x)), 1e-12)).astype(np.float32)


NOISE_KINDS = ("white", "pink")


def noise_clips(seconds: float, sample_rate: int = 16000, seed: int = 0) -> dict[str, np.ndarray]:
    """White and pink noise (rms 0.05) of `seconds`: what the judges are asked about as a control."""
    return {
        kind: make(seconds, sample_rate, seed=seed)
        for kind, make in zip(NOISE_KINDS, (white_noise, pink_noise), strict=True)
    }
