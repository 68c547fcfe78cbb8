"""How many of the words can a log-mel predicted from the codes alone carry? (issue 14 diagnostic)

A model's encoder turns the corpora into codes; predictors of the 80-bin log-mel (the mel head's target,
at the code rate) from those codes and the speaker are fitted on all but some held-out utterances, and
their predictions for the held-out ones are rendered by Griffin-Lim (the probe's 16 iterations) and judged
like the probe does: pocketsphinx WER, STOI, log-mel L1. Beside them: the source clips, Griffin-Lim from
the true log-mel (the ceiling of this proxy), and, for a model with a mel head, that head. So:

- if a dedicated predictor is heard near the ceiling, the codes carry the words and the decoder's mel
  head / conditioning (context, size, training) is what loses them;
- if even a wide-context predictor is far from it, the codes themselves are short of the words.

Predictors: `mean` (the mean log-mel of each code: no context, no speaker), `netN` (code and speaker
embeddings -> residual dilated k3 convolutions with +-N frames of context (N+1 a power of two; 4 ms
frames) -> 80 bins, L1, trained for `--minutes` of wall time), `head` (the model's own mel head).

    python bench/code_mel_ceiling.py --model M.pt CORPUS [CORPUS ...] --predictors mean net15 net127 head

Encoded codes are kept in `--work` (reused by later invocations with the same model and corpora), so
two invocations can train different nets side by side, one thread each.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vqconvert.checkpoint import load_model
from vqconvert.config import HOP, SAMPLE_RATE
from vqconvert.data.cache import load_or_build_cache
from vqconvert.evaluation import judges
from vqconvert.model.condnet import DilatedBlock
from vqconvert.model.mel import LogMel
from vqconvert.probe import PROBE_GL_ITERS, PROBE_MELS
from vqconvert.vocoder import griffin_lim

HELD_OUT = ("flite-awb_000?", "flite-rms_000?", "flite-slt_000?", "festival-kal_000?")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def encode_corpus(args, cache) -> dict:
    """{"codes": [int16 (F_i,)], "mels": [float16 (80, F_i)], "spk": [int], "ids": [str], "speakers": [...]}."""
    key = hashlib.sha256(f"{Path(args.model).resolve()}:{Path(args.model).stat().st_mtime}:{cache.key}".encode())
    path = Path(args.work) / f"codes-{key.hexdigest()[:12]}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    loaded, log_mel = load_model(args.model), LogMel(SAMPLE_RATE, PROBE_MELS, HOP)
    speakers = sorted({e.speaker for e in cache.utterances})
    out = {"codes": [], "mels": [], "spk": [], "ids": [], "speakers": speakers}
    t0 = time.monotonic()
    for i, e in enumerate(cache.utterances):
        a = np.asarray(cache.audio(i), np.float32)
        a = torch.from_numpy(a[: len(a) // HOP * HOP].copy())[None]
        if a.shape[1] < 8 * HOP:
            continue
        with torch.no_grad():
            out["codes"].append(loaded.model.encode(a)[0].to(torch.int16))
            out["mels"].append(log_mel(a)[0].half())
        out["spk"].append(speakers.index(e.speaker))
        out["ids"].append(e.utt_id)
        if i % 500 == 0:
            log(f"encoded {i}/{len(cache.utterances)} ({time.monotonic() - t0:.0f} s)")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    torch.save(out, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").rename(path)
    return out


class CodeMel(nn.Module):
    """(B, F) codes, (B,) speakers -> (B, 80, F) log-mel; context +-sum(dilations) frames."""

    def __init__(self, n_codes: int, n_speakers: int, channels: int, dilations: list[int], bias: torch.Tensor):
        super().__init__()
        self.code, self.spk = nn.Embedding(n_codes, channels), nn.Embedding(n_speakers, channels)
        self.blocks = nn.ModuleList([DilatedBlock(channels, d) for d in dilations])
        self.out = nn.Conv1d(channels, bias.numel(), 1)
        with torch.no_grad():
            self.out.bias.copy_(bias)

    def forward(self, codes: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        x = (self.code(codes) + self.spk(spk)[:, None]).transpose(1, 2)
        for b in self.blocks:
            x = b(x)
        return self.out(torch.relu(x))


def fit_mean(data, train: list[int], n_codes: int) -> torch.Tensor:
    """(n_codes, 80) mean log-mel per code over the training frames (global mean for unused codes)."""
    codes = torch.cat([data["codes"][i].long() for i in train])
    mels = torch.cat([data["mels"][i].float() for i in train], dim=1)
    sums = torch.zeros(n_codes, mels.shape[0]).index_add_(0, codes, mels.T)
    counts = torch.bincount(codes, minlength=n_codes).float()[:, None]
    return torch.where(counts > 0, sums / counts.clamp(min=1), mels.mean(dim=1))


def fit_net(data, train: list[int], val: list[int], n_codes: int, context: int, args) -> CodeMel:
    n_blocks = int(round(math.log2(context + 1)))
    if 2**n_blocks - 1 != context:
        raise SystemExit(f"net{context}: the context must be 2^n - 1 frames (7, 15, 31, 63, 127, ...)")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    bias = torch.cat([data["mels"][i].float() for i in train[:200]], dim=1).mean(dim=1)
    net = CodeMel(n_codes, len(data["speakers"]), args.channels, [2**k for k in range(n_blocks)], bias)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    lengths = np.array([len(data["codes"][i]) for i in train], np.float64)
    crop, t0, step = args.crop_frames, time.monotonic(), 0
    while time.monotonic() - t0 < 60 * args.minutes:
        picks = rng.choice(len(train), size=args.batch, p=lengths / lengths.sum())
        codes = torch.zeros(args.batch, crop, dtype=torch.long)
        mels = torch.zeros(args.batch, PROBE_MELS, crop)
        mask = torch.zeros(args.batch, 1, crop)
        for b, j in enumerate(picks):
            i = train[j]
            n = len(data["codes"][i])
            s = int(rng.integers(0, max(1, n - crop + 1)))
            m = min(crop, n - s)
            codes[b, :m] = data["codes"][i][s : s + m].long()
            mels[b, :, :m] = data["mels"][i][:, s : s + m].float()
            mask[b, :, :m] = 1
        spk = torch.tensor([data["spk"][train[j]] for j in picks])
        loss = ((net(codes, spk) - mels).abs() * mask).sum() / (mask.sum() * PROBE_MELS)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 250 == 0:
            log(f"net{context} step {step} ({time.monotonic() - t0:.0f} s): train L1 {loss.item():.3f}, "
                f"held-out L1 {held_out_l1(lambda i: predict_net(net, data, i), data, val):.3f}")
    log(f"net{context}: {step} steps of batch {args.batch} x {crop} frames in {args.minutes} min")
    net.steps = step
    return net


@torch.no_grad()
def predict_net(net: CodeMel, data, i: int) -> torch.Tensor:
    net.eval()
    out = net(data["codes"][i].long()[None], torch.tensor([data["spk"][i]]))[0]
    net.train()
    return out


def held_out_l1(predict, data, idx: list[int]) -> float:
    return float(np.mean([(predict(i) - data["mels"][i].float()).abs().mean().item() for i in idx]))


def judge(name: str, data, idx: list[int], cache_audio: dict, mels: dict | None, asr) -> dict:
    """WER, STOI, log-mel L1 of Griffin-Lim renderings of `mels` (None: the source audio itself)."""
    refs, hyps, stois, l1s = [], [], [], []
    for i in idx:
        src = cache_audio[i]
        if mels is None:
            audio = src
        else:
            audio = griffin_lim(mels[i], SAMPLE_RATE, HOP, n_iter=PROBE_GL_ITERS)
            l1s.append((mels[i].float() - data["mels"][i].float()).abs().mean().item())
        refs.append(data["texts"][i])
        hyps.append(asr.transcribe(audio))
        s = judges.stoi(src, audio, SAMPLE_RATE)
        if s is not None:
            stois.append(s)
    w = asr.wer(refs, hyps)
    row = {"name": name, "wer": w["wer"], "words": w["words"], "stoi": float(np.mean(stois)),
           "l1": float(np.mean(l1s)) if l1s else None}
    l1 = f"{row['l1']:.3f}" if l1s else "-"
    print(f"{name:32s} WER {row['wer']:.3f} ({w['words']} words)  STOI {row['stoi']:.3f}  log-mel L1 {l1}",
          flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--predictors", nargs="+", default=["source", "true", "mean", "net15", "net127"])
    ap.add_argument("--held-out", nargs="+", default=list(HELD_OUT), help="utterance ids or globs")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--work", default="out/code-mel")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop-frames", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="append the rows to this JSON-lines file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cache = load_or_build_cache(args.corpora, args.cache_dir)
    data = encode_corpus(args, cache)
    by_id = {e.utt_id: k for k, e in enumerate(cache.utterances)}
    data["texts"] = [cache.utterances[by_id[u]].text or "" for u in data["ids"]]
    held = [i for i, u in enumerate(data["ids"]) if any(fnmatch.fnmatchcase(u, p) for p in args.held_out)]
    held_set = set(held)
    train = [i for i in range(len(data["ids"])) if i not in held_set]
    if not held:
        raise SystemExit("no held-out utterances match --held-out")
    audio = {}
    for i in held:
        a = np.asarray(cache.audio(by_id[data["ids"][i]]), np.float32)
        audio[i] = a[: len(a) // HOP * HOP].copy()
    loaded = load_model(args.model)
    n_codes = loaded.config.codebook_size
    seconds = sum(len(a) for a in audio.values()) / SAMPLE_RATE
    log(f"{len(train)} training utterances, {len(held)} held out ({seconds:.0f} s)")
    asr, rows = judges.Transcriber(), []
    for p in args.predictors:
        if p == "source":
            rows.append(judge("source", data, held, audio, None, asr))
        elif p == "true":
            rows.append(judge("Griffin-Lim of the true log-mel", data, held, audio,
                              {i: data["mels"][i].float() for i in held}, asr))
        elif p == "mean":
            table = fit_mean(data, train, n_codes)
            rows.append(judge("mean log-mel per code", data, held, audio,
                              {i: table[data["codes"][i].long()].T for i in held}, asr))
        elif p == "head":
            model = loaded.model
            if model.cfg.mel_bins != PROBE_MELS:
                raise SystemExit(f"{args.model}: no {PROBE_MELS}-bin mel head")
            idx = {s: loaded.speakers.index(s) for s in data["speakers"] if s in loaded.speakers}
            spk = {i: torch.tensor([idx[data["speakers"][data["spk"][i]]]]) for i in held}
            mels = {i: model.predict_mel(data["codes"][i].long()[None], spk[i])[0] for i in held}
            rows.append(judge("the model's mel head", data, held, audio, mels, asr))
        elif p.startswith("net"):
            net = fit_net(data, train, held, n_codes, int(p[3:]), args)
            rows.append(judge(f"net, +-{int(p[3:])} frames, {net.steps} steps", data, held, audio,
                              {i: predict_net(net, data, i) for i in held}, asr))
        else:
            raise SystemExit(f"unknown predictor {p!r}")
        rows[-1].update(predictor=p, model=args.model)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
