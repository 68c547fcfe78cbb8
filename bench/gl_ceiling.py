"""The ceiling of the probe's Griffin-Lim intelligibility proxy (issue 14, item 2): Griffin-Lim from the
*true* 80-bin log-mel of the probe clips, judged like the probe judges the mel head's rendering
(pocketsphinx WER, STOI), beside the source clips themselves. If this is near the source WER, a mel
head whose Griffin-Lim WER stays near 1.0 is not yet predicting intelligible mels.

    python bench/gl_ceiling.py CORPUS [CORPUS ...] [--cache-dir cache] [--iters 16 32]

Give the corpora a training run used, so that the trainer's audio cache (trimmed, resampled) is found
and the clips are exactly the probe's (default: `models/train-cond.sh`'s probe ids, first 5 s).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vqconvert.config import HOP, SAMPLE_RATE
from vqconvert.data.cache import load_or_build_cache
from vqconvert.evaluation import judges
from vqconvert.model.mel import LogMel
from vqconvert.probe import PROBE_GL_ITERS, PROBE_MELS, probe_clips
from vqconvert.vocoder import griffin_lim

PROBE_IDS = ("flite-awb_0001", "flite-rms_0001", "flite-slt_0001", "festival-kal_0001")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--probe", nargs="+", default=list(PROBE_IDS))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--iters", type=int, nargs="+", default=[PROBE_GL_ITERS, 32])
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = load_or_build_cache(args.corpora, args.cache_dir)
    spk_index = {s: i for i, s in enumerate(sorted({u.speaker for u in cache.utterances}))}
    clips = probe_clips(cache, args.probe, spk_index, args.seconds)
    asr, log_mel = judges.Transcriber(), LogMel(SAMPLE_RATE, PROBE_MELS, HOP)
    refs = [c.text or "" for c in clips]

    def report(name: str, audios: list[np.ndarray]) -> None:
        wer = asr.wer(refs, [asr.transcribe(a) for a in audios])["wer"]
        stoi = np.mean([judges.stoi(c.audio, a, SAMPLE_RATE) for c, a in zip(clips, audios, strict=True)])
        print(f"{name}: WER {wer:.3f}  STOI {stoi:.3f}")

    print(f"{len(clips)} probe clips, {sum(len(c.audio) for c in clips) / SAMPLE_RATE:.1f} s")
    report("source", [c.audio for c in clips])
    for n in args.iters:
        renders = [griffin_lim(log_mel(torch.from_numpy(c.audio)[None])[0], SAMPLE_RATE, HOP, n_iter=n) for c in clips]
        report(f"Griffin-Lim of the true log-mel, {n} iterations", renders)
    if asr.timeouts:
        print(f"warning: {asr.timeouts} transcriptions hit the recogniser's time limit (busy machine?)")


if __name__ == "__main__":
    main()
