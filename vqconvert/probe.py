"""In-training measurement of what matters to a listener: the model's free-running reconstructions of a
few fixed held-out clips, judged by speech recognition (WER), STOI and log-mel distance, and (with a mel
head) the Griffin-Lim rendering of its mel prediction. Teacher-forced NLL alone hides exposure bias."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vqconvert.config import HOP
from vqconvert.errors import VQConvertError
from vqconvert.generate import generate
from vqconvert.model.mel import LogMel
from vqconvert.sampling import SamplingOptions
from vqconvert.stats import speaker_gain
from vqconvert.vocoder import griffin_lim

PROBE_MELS = 80
PROBE_GL_ITERS = 16


@dataclass(frozen=True)
class ProbeClip:
    utt_id: str
    speaker: int
    audio: np.ndarray  # float32 (T,), T a multiple of 64
    text: str | None


def probe_clips(cache, patterns: Sequence[str], spk_index: dict[str, int], seconds: float) -> list[ProbeClip]:
    """The cache's utterances whose utt_id matches one of `patterns` (ids or globs), cut to `seconds`."""
    clips, hop = [], HOP
    limit = int(seconds * cache.sample_rate) // hop * hop
    for i, e in enumerate(cache.utterances):
        if any(fnmatch.fnmatchcase(e.utt_id, p) for p in patterns):
            a = np.asarray(cache.audio(i), np.float32)
            n = min(len(a) // hop * hop, limit)
            if n >= 4 * hop:
                clips.append(ProbeClip(e.utt_id, spk_index[e.speaker], a[:n].copy(), e.text))
    missing = [p for p in patterns if not any(fnmatch.fnmatchcase(c.utt_id, p) for c in clips)]
    if missing:
        raise VQConvertError(f"probe utterances not found in the training data: {', '.join(missing)}")
    return clips


def _optional(name: str):
    """A judge from vqconvert.judges, or None when its package is missing (the probe then skips it)."""
    from vqconvert.evaluation import judges

    try:
        if name == "asr":
            return judges.Transcriber()
        judges.import_judge(name)
        return judges.stoi
    except judges.MissingJudge:
        return None


class Probe:
    """Measures a model on fixed clips; `run(model)` -> a flat dict of metrics (names start `probe_`)."""

    def __init__(self, clips: Sequence[ProbeClip], sample_rate: int, temperatures=(0.8, 1.0), seed: int = 0):
        self.clips, self.sample_rate = list(clips), sample_rate
        self.temperatures, self.seed = tuple(temperatures), seed
        self.asr, self.stoi = _optional("asr"), _optional("stoi")
        self.log_mel = LogMel(sample_rate, PROBE_MELS, HOP)
        self._source_wer: float | None = None

    def _mel(self, audio: np.ndarray) -> torch.Tensor:
        return self.log_mel(torch.from_numpy(np.asarray(audio, np.float32))[None])[0]

    def _wer(self, audios: Sequence[np.ndarray]) -> float | None:
        if self.asr is None:
            return None
        refs = [c.text or "" for c in self.clips]
        return self.asr.wer(refs, [self.asr.transcribe(a) for a in audios])["wer"]

    def _judge(self, audios: Sequence[np.ndarray], tag: str) -> dict:
        out = {f"probe_{tag}_wer": self._wer(audios)}
        if self.stoi is not None:
            vals = [self.stoi(c.audio, a, self.sample_rate) for c, a in zip(self.clips, audios, strict=True)]
            vals = [v for v in vals if v is not None]
            out[f"probe_{tag}_stoi"] = float(np.mean(vals)) if vals else None
        l1 = [float((self._mel(a) - self._mel(c.audio)).abs().mean()) for c, a in zip(self.clips, audios, strict=True)]
        out[f"probe_{tag}_mel_l1"] = float(np.mean(l1))
        return out

    @torch.no_grad()
    def run(self, model) -> dict:
        was_training = model.training
        model.eval()
        dev = next(model.parameters()).device
        try:
            codes = [model.encode(torch.from_numpy(c.audio)[None].to(dev))[0].cpu() for c in self.clips]
            spk = [c.speaker for c in self.clips]
            if self._source_wer is None:
                self._source_wer = self._wer([c.audio for c in self.clips])
            out: dict = {"probe_source_wer": self._source_wer}
            if model.cfg.mel_bins > 0:
                out.update(self._mel_head(model, codes, spk, dev))
            for t in self.temperatures:
                audio = generate(model, codes, spk, SamplingOptions(temperature=t, seed=self.seed))
                out.update(self._judge([a.numpy() for a in audio], f"t{t:g}"))
        finally:
            model.train(was_training)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}

    def _mel_head(self, model, codes, spk, dev) -> dict:
        """Mel-head L1 with the true and with another speaker (the mel speaker gain), and the WER of its
        Griffin-Lim rendering."""
        n_spk = max(model.cfg.n_speakers, 1)
        l1_true, l1_other, renders = [], [], []
        for c, s, clip in zip(codes, spk, self.clips, strict=True):
            target = model.log_mel(torch.from_numpy(clip.audio)[None].to(dev))[0]
            pred = model.predict_mel(c[None].to(dev), torch.tensor([s], device=dev))[0]
            other = model.predict_mel(c[None].to(dev), torch.tensor([(s + 1) % n_spk], device=dev))[0]
            l1_true.append(float((pred - target).abs().mean()))
            l1_other.append(float((other - target).abs().mean()))
            renders.append(griffin_lim(pred, self.sample_rate, model.cfg.hop, n_iter=PROBE_GL_ITERS))
        return {
            "probe_mel_head_l1": float(np.mean(l1_true)),
            "probe_mel_speaker_gain": speaker_gain(float(np.mean(l1_true)), [float(np.mean(l1_other))]),
            "probe_gl_wer": self._wer(renders),
        }
