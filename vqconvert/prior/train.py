"""Training the code prior on codes files (`vqconvert encode CORPUS --out-dir CODES`), and its metrics:
NLL in bits per code on held-out utterances, against log2(K) and the unigram entropy of the codes."""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vqconvert.prior.model import PRIOR_PRESETS, CodePrior
from vqconvert.stats import code_counts, entropy_bits

IGNORE = -100


@dataclass(frozen=True)
class PriorTrainConfig:
    preset: str = "small"
    steps: int = 1500
    batch_size: int = 16
    seq_frames: int = 384  # 1.5 s of codes per crop
    start_fraction: float = 0.25  # crops that begin at the utterance's first code (after the start token)
    lr: float = 2e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    val_fraction: float = 0.02
    validate_every: int = 250
    max_minutes: float = 0.0  # stop (and still validate and save) after this much wall time; 0 = no limit
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Utterance:
    codes: np.ndarray  # (F,) int64
    speaker: str
    name: str


def split_utterances(utts: Sequence[Utterance], val_fraction: float) -> tuple[list[Utterance], list[Utterance]]:
    """A fixed hash split by utterance name (CRC-32), the same for every run; at least one utterance
    stays in training."""
    train, val = [], []
    for u in utts:
        (val if zlib.crc32(u.name.encode()) % 10_000 < val_fraction * 10_000 else train).append(u)
    if not train and val:
        train.append(val.pop())
    return train, val


def unigram_entropy(utts: Sequence[Utterance], k: int) -> float:
    """Entropy (bits) of the code histogram: what a prior without context would score."""
    return entropy_bits(code_counts((u.codes for u in utts), k))


def cross_unigram_bits(train: Sequence[Utterance], val: Sequence[Utterance], k: int) -> float:
    """Bits per code of `val` under the add-one-smoothed code histogram of `train`."""
    counts = np.ones(k, np.float64)
    for u in train:
        counts += np.bincount(u.codes, minlength=k)[:k]
    logp = np.log2(counts / counts.sum())
    total = sum(float(logp[u.codes].sum()) for u in val)
    n = sum(u.codes.size for u in val)
    return -total / max(n, 1)


@torch.no_grad()
def evaluate(prior: CodePrior, utts: Sequence[Utterance], speakers: Sequence[str]) -> dict:
    """Whole utterances from the start token: {"bits_per_code", "codes", "utterances"}."""
    prior.eval()
    device = next(prior.parameters()).device
    total, n = 0.0, 0
    for u in utts:
        codes = torch.from_numpy(u.codes).long()[None].to(device)
        spk = torch.tensor([speakers.index(u.speaker)], device=device)
        logits = prior(codes, spk)
        total += float(F.cross_entropy(logits[0].float(), codes[0], reduction="sum"))
        n += codes.numel()
    return {"bits_per_code": total / max(n, 1) / math.log(2), "codes": n, "utterances": len(utts)}


def _lr(cfg: PriorTrainConfig, step: int) -> float:
    if step <= cfg.warmup_steps:
        return cfg.lr * step / max(cfg.warmup_steps, 1)
    t = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def _batch(utts, speakers, cfg: PriorTrainConfig, rng: np.random.Generator, weights: np.ndarray):
    picks = rng.choice(len(utts), size=cfg.batch_size, p=weights)
    seq = cfg.seq_frames
    codes = np.zeros((cfg.batch_size, seq), np.int64)
    target = np.full((cfg.batch_size, seq), IGNORE, np.int64)
    spk = np.zeros(cfg.batch_size, np.int64)
    starts = np.zeros(cfg.batch_size, np.int64)
    for b, i in enumerate(picks):
        u = utts[i]
        n = u.codes.size
        s = 0 if n <= seq or rng.random() < cfg.start_fraction else int(rng.integers(0, n - seq + 1))
        piece = u.codes[s : s + seq]
        codes[b, : piece.size] = piece
        target[b, : piece.size] = piece
        spk[b] = speakers.index(u.speaker)
        starts[b] = s
    return torch.from_numpy(codes), torch.from_numpy(target), torch.from_numpy(spk), torch.from_numpy(starts)


def _loss(prior: CodePrior, codes, target, spk, starts) -> torch.Tensor:
    # A crop that starts inside an utterance has no start token before it: its first code is only context
    # (input) and not scored; the model still sees the start token for crops that begin at code 0.
    logits = prior(codes, spk)
    target = target.clone()
    target[starts > 0, 0] = IGNORE
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), ignore_index=IGNORE)


def train_prior(
    train: Sequence[Utterance],
    val: Sequence[Utterance],
    speakers: Sequence[str],
    codebook_size: int,
    cfg: PriorTrainConfig = PriorTrainConfig(),
    log: Callable[[str], None] | None = None,
) -> tuple[CodePrior, dict]:
    """Fit a CodePrior; returns it (eval mode, CPU) and its metrics (all measured here)."""
    say = log or (lambda _m: None)
    if not train:
        raise ValueError("no training utterances")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    pcfg = dataclasses.replace(PRIOR_PRESETS[cfg.preset], codebook_size=codebook_size, n_speakers=len(speakers))
    prior = CodePrior(pcfg)
    opt = torch.optim.AdamW(prior.parameters(), lr=cfg.lr, weight_decay=0.01)
    lengths = np.array([u.codes.size for u in train], np.float64)
    weights = lengths / lengths.sum()
    t0 = time.monotonic()
    curve, running, last = [], [], 0
    for step in range(1, cfg.steps + 1):
        prior.train()
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        loss = _loss(prior, *_batch(train, speakers, cfg, rng, weights))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prior.parameters(), cfg.grad_clip)
        opt.step()
        running.append(float(loss.detach()) / math.log(2))
        last = step
        out_of_time = cfg.max_minutes > 0 and time.monotonic() - t0 > 60 * cfg.max_minutes
        if step % 50 == 0 or step == cfg.steps or out_of_time:
            say(
                f"prior step {step}/{cfg.steps}: train {np.mean(running[-50:]):.3f} bits/code, "
                f"{time.monotonic() - t0:.0f} s"
            )
        if val and cfg.validate_every and (step % cfg.validate_every == 0) and step != cfg.steps and not out_of_time:
            v = evaluate(prior, val, speakers)["bits_per_code"]
            curve.append({"step": step, "val_bits_per_code": round(v, 4)})
            say(f"prior step {step}: validation {v:.3f} bits/code")
        if out_of_time:
            say(f"stopping at step {step}: --max-minutes {cfg.max_minutes:g} reached")
            break
    elapsed = time.monotonic() - t0
    metrics = {
        "steps": last,
        "train_seconds": round(elapsed, 1),
        "train_bits_per_code_last50": round(float(np.mean(running[-50:])), 4),
        "log2_k": math.log2(codebook_size),
        "unigram_entropy_train": round(unigram_entropy(train, codebook_size), 4),
        "train_utterances": len(train),
        "train_codes": int(lengths.sum()),
        "curve": curve,
    }
    if val:
        ev = evaluate(prior, val, speakers)
        metrics.update(
            val_bits_per_code=round(ev["bits_per_code"], 4),
            val_codes=ev["codes"],
            val_utterances=ev["utterances"],
            unigram_entropy_val=round(unigram_entropy(val, codebook_size), 4),
            val_bits_unigram_prior=round(cross_unigram_bits(train, val, codebook_size), 4),
        )
        curve.append({"step": last, "val_bits_per_code": metrics["val_bits_per_code"]})
    return prior.eval(), metrics
