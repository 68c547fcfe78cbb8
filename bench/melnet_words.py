"""Words through the mel net (issue 14): pocketsphinx WER, STOI and log-mel L1 of Griffin-Lim renderings
of mel nets (`vqconvert train-mel`) on held-out synthetic utterances, beside the source clips, Griffin-Lim
of their true log-mel (the ceiling of this rendering) and, with --wavenet T, the model's WaveNet.

    python bench/melnet_words.py corpus/synth --model M.pt --mel-net M.mel.pt [--mel-net OTHER.mel.pt]
        [--held-out 'flite-awb_000?' ...] [--convert-to flite-slt,festival-kal] [--wavenet 0.8] [--json OUT]
        [--sharpen 1.2 ...]

Held out by default: utterances _0000-_0009 of flite-awb, flite-rms, flite-slt and festival-kal (40 clips,
149 s, 465 words), the clips of bench/code_mel_ceiling.py; train the mel net with the same --holdout globs.
The clips are encoded exactly as `vqconvert encode` does. Conversions (--convert-to) render each clip in
each other listed voice: their WER says whether the words survive a change of voice (their speaker-ID is
`vqconvert evaluate --vocoder griffin-lim`'s to judge). With 465 words, WER differences under ~0.05 are noise.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time

import numpy as np
import torch

from vqconvert.checkpoint import load_model
from vqconvert.data.cache import load_or_build_cache
from vqconvert.decoding import decode_codes
from vqconvert.evaluation import judges
from vqconvert.melnet.store import load_melnet
from vqconvert.model.mel import LogMel
from vqconvert.sampling import SamplingOptions
from vqconvert.vocoder import GL_ITERS, GL_MOMENTUM, griffin_lim

HELD_OUT = ("flite-awb_000?", "flite-rms_000?", "flite-slt_000?", "festival-kal_000?")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sharpen(log_mel: torch.Tensor, factor: float) -> torch.Tensor:
    """(n_mels, F) -> each bin's deviations from its mean over the utterance scaled by `factor`."""
    mean = log_mel.mean(dim=1, keepdim=True)
    return mean + factor * (log_mel - mean)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--mel-net", action="append", default=[], help="a mel net file (repeatable)")
    ap.add_argument("--held-out", nargs="+", default=list(HELD_OUT), help="utterance ids or globs")
    ap.add_argument("--convert-to", default="", help="comma-separated voices to convert every clip to")
    ap.add_argument("--wavenet", type=float, action="append", default=[], help="also the WaveNet at this temperature")
    ap.add_argument("--gl-iters", type=int, default=GL_ITERS)
    ap.add_argument("--gl-momentum", type=float, default=GL_MOMENTUM, help="fast Griffin-Lim's momentum (0 = plain)")
    ap.add_argument(
        "--sharpen",
        type=float,
        action="append",
        default=[],
        help="also render each mel net's log-mel with its deviations from each bin's utterance mean scaled "
        "by this factor (global-variance compensation; repeatable)",
    )
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="append the rows to this JSON-lines file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gl = (args.gl_iters, 0, args.gl_momentum)  # griffin_lim's n_iter, seed, momentum
    loaded = load_model(args.model)
    model, hop, sr = loaded.model, loaded.config.hop, loaded.config.sample_rate
    cache = load_or_build_cache(args.corpora, args.cache_dir)
    held = [i for i, e in enumerate(cache.utterances) if any(fnmatch.fnmatchcase(e.utt_id, p) for p in args.held_out)]
    if not held:
        raise SystemExit("no held-out utterances match --held-out")
    audio = {i: np.asarray(cache.audio(i), np.float32) for i in held}
    audio = {i: a[: len(a) // hop * hop].copy() for i, a in audio.items()}
    texts = {i: cache.utterances[i].text or "" for i in held}
    spk = {i: loaded.speakers.index(cache.utterances[i].speaker) for i in held}
    log_mel = LogMel(sr, 80, hop)
    with torch.no_grad():
        true = {i: log_mel(torch.from_numpy(audio[i])[None])[0] for i in held}
        codes = {i: model.encode(torch.from_numpy(audio[i])[None])[0] for i in held}
    log(f"{len(held)} held-out clips, {sum(len(a) for a in audio.values()) / sr:.0f} s")
    targets = [loaded.speakers.index(t.strip()) for t in args.convert_to.split(",") if t.strip()]
    asr, rows = judges.Transcriber(), []

    def judge(name: str, wavs: dict, mels: dict | None = None, voice: int | None = None) -> None:
        t0 = time.monotonic()
        hyps = [asr.transcribe(wavs[i]) for i in wavs]
        w = asr.wer([texts[i] for i in wavs], hyps)
        stois = [judges.stoi(audio[i], wavs[i], sr) for i in wavs] if voice is None else []
        stois = [s for s in stois if s is not None]
        l1 = [float((mels[i] - true[i]).abs().mean()) for i in wavs] if mels is not None and voice is None else []
        row = {
            "name": name,
            "wer": w["wer"],
            "words": w["words"],
            "clips": len(wavs),
            "stoi": float(np.mean(stois)) if stois else None,
            "l1": float(np.mean(l1)) if l1 else None,
            "voice": None if voice is None else loaded.speakers[voice],
            "model": args.model,
        }
        rows.append(row)
        extra = "" if voice is None else f" -> {row['voice']}"
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(
            f"{name + extra:48s} WER {row['wer']:.3f} ({w['words']} words)  STOI {fmt(row['stoi'])}  "
            f"log-mel L1 {fmt(row['l1'])}  ({time.monotonic() - t0:.0f} s)",
            flush=True,
        )

    judge("source", audio)
    judge("Griffin-Lim of the true log-mel", {i: griffin_lim(true[i], sr, hop, *gl) for i in held}, true)
    for path in args.mel_net:
        lm = load_melnet(path)
        lm.check_model(loaded)
        for voice in [None, *targets]:
            with torch.no_grad():
                mels = {i: lm.net(codes[i][None], torch.tensor([spk[i] if voice is None else voice]))[0] for i in held}
            sel = held if voice is None else [i for i in held if spk[i] != voice]
            judge(f"mel net {path}", {i: griffin_lim(mels[i], sr, hop, *gl) for i in sel}, mels, voice)
            for a in args.sharpen:
                sharp = {i: sharpen(m, a) for i, m in mels.items()}
                wavs = {i: griffin_lim(sharp[i], sr, hop, *gl) for i in sel}
                judge(f"mel net {path} sharpen {a:g}", wavs, sharp, voice)
    for t in args.wavenet:
        for voice in [None, *targets]:
            sel = held if voice is None else [i for i in held if spk[i] != voice]
            outs = decode_codes(
                model,
                [codes[i] for i in sel],
                [spk[i] if voice is None else voice for i in sel],
                SamplingOptions(seed=0, temperature=t),
                batch_size=8,
            )
            with torch.no_grad():
                mels = {i: log_mel(torch.from_numpy(o)[None])[0] for i, o in zip(sel, outs, strict=True)}
            judge(f"WaveNet t{t}", dict(zip(sel, outs, strict=True)), mels, voice)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
