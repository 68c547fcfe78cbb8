"""Training a mel net on a VQ-VAE's frozen codes: the corpus is encoded once (the codes of the audio as it
is, plus `copies` of pitch-shifted versions, so the net must take the voice from the speaker, not from
what pitch the codes keep), the targets are the unshifted audio's log-mels, and the loss is L1 on random
crops. Validation: held-out utterances' log-mel L1, and the speaker gain (L1 when told another speaker
minus L1 with the true one: how much the net's voice comes from the speaker embedding)."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vqconvert.audio import pitch_shift
from vqconvert.melnet.model import MELNET_PRESETS, CodeMelNet
from vqconvert.model.encoding import nearest_code
from vqconvert.model.mel import LogMel


@dataclass(frozen=True)
class ScheduleConfig:
    """What the mel net's trainers share: crops, batch, and the learning-rate schedule (`scheduled_lr`)."""

    steps: int = 20_000  # the cosine schedule's length; the run may stop earlier at max_minutes
    max_minutes: float = 0.0  # stop after this much training time (0 = none); the cosine then ends here
    batch_size: int = 16
    crop_frames: int = 256  # 1.02 s of codes per crop
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    validate_every: int = 1000  # steps (0 = only at the end)
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class MelTrainConfig(ScheduleConfig):
    preset: str = "small"
    delta_weight: float = 0.0  # weight of the L1 on time and frequency differences (0 = plain L1)
    copies: int = 1  # pitch-shifted encodings of each utterance beside the unshifted one
    perturb_semitones: float = 5.0  # each copy shifted by U(-p, p)


@dataclass
class MelUtt:
    codes: list[torch.Tensor]  # [(F,) int16]: the unshifted audio's codes, then each pitch-shifted copy's
    mel: torch.Tensor  # (n_mels, F) float16 log-mel of the unshifted audio
    speaker: int  # index in the VQ-VAE's speaker table
    name: str


@torch.no_grad()
def encode_codes(
    model, audio: np.ndarray, copies: int, semitones: float, rng: np.random.Generator
) -> list[torch.Tensor]:
    """(T,) float32 audio, T a multiple of the hop -> [(F,) int16 codes] of it and of `copies` shifted versions.

    In float32 and one piece (3x faster than `VQVAE.encode`'s exact float64 path): a rare near-tie may
    pick the other code, which does not matter for training data."""
    versions = [audio] + [pitch_shift(audio, float(rng.uniform(-semitones, semitones))) for _ in range(copies)]
    return [encode_once(model, v) for v in versions]


@torch.no_grad()
def encode_once(model, audio: np.ndarray) -> torch.Tensor:
    """(T,) float32 audio, T a multiple of the hop -> (F,) int16 codes on the CPU (float32, one piece)."""
    codebook = model.quantizer.codebook.float()
    z = model.encoder(torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None].to(codebook.device))[0]
    return nearest_code(z.transpose(0, 1).float(), codebook).to(torch.int16).cpu()


def new_melnet(preset: str, codebook_size: int, n_speakers: int, train: Sequence) -> CodeMelNet:
    """A `preset` mel net for a VQ-VAE's codes and speaker table, its output starting at the mean log-mel of
    `train` (utterances with `.mel` and `.speaker`), whose speakers it marks as learnt."""
    cfg = dataclasses.replace(
        MELNET_PRESETS[preset], codebook_size=codebook_size, n_speakers=n_speakers, n_mels=train[0].mel.shape[0]
    )
    net = CodeMelNet(cfg)
    net.init_bias(torch.cat([u.mel[:, ::8].float() for u in train[:500]], dim=1).mean(dim=1))
    net.learnt[sorted({u.speaker for u in train})] = True
    return net


def mel_targets(
    codes: Sequence[Sequence[torch.Tensor]], audio: Iterable[np.ndarray], log_mel: LogMel
) -> list[torch.Tensor]:
    """Each utterance's (n_mels, F) float16 log-mel, F = its code count."""
    out = []
    for c, a in zip(codes, audio, strict=True):
        with torch.no_grad():
            m = log_mel(torch.from_numpy(np.ascontiguousarray(a))[None])[0]
        out.append(m[:, : c[0].numel()].half())
    return out


def _masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| over the (B, C, F) entries where the (B, 1, F) mask is 1."""
    return ((a - b).abs() * mask).sum() / (mask.sum() * a.shape[1]).clamp(min=1)


def mel_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, delta_weight: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, its plain L1 part): the masked L1 of (B, n_mels, F) log-mels, plus `delta_weight` x the L1 of
    their differences along time and along frequency (L1 alone is minimised by an average that blurs onsets
    and formants, which the differences penalise). mask: (B, 1, F), 1 on real frames."""
    l1 = _masked_l1(pred, target, mask)
    loss = l1
    if delta_weight:
        dt = _masked_l1(pred.diff(dim=2), target.diff(dim=2), mask[:, :, 1:] * mask[:, :, :-1])
        df = _masked_l1(pred.diff(dim=1), target.diff(dim=1), mask)
        loss = l1 + delta_weight * (dt + df)
    return loss, l1.detach()


def scheduled_lr(cfg: ScheduleConfig, step: int, elapsed: float) -> float | None:
    """The learning rate of `step`, `elapsed` seconds into training: a linear warm-up, then a cosine to
    `min_lr_ratio` that ends at `cfg.steps` or at `max_minutes`, whichever comes first; None once either
    is reached (the run stops)."""
    if step >= cfg.steps or (cfg.max_minutes and elapsed >= 60 * cfg.max_minutes):
        return None
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = max(step / cfg.steps, elapsed / (60 * cfg.max_minutes) if cfg.max_minutes else 0.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def pick_crops(utts, cfg: ScheduleConfig, rng: np.random.Generator, weights: np.ndarray, fill) -> tuple:
    """`cfg.batch_size` random crops of `cfg.crop_frames` frames from utterances drawn with `weights`; calls
    `fill(row, utt, start, frames)` to write each row's input. Returns (B,) speakers, (B, n_mels, crop)
    log-mel targets and the (B, 1, crop) mask of real frames."""
    crop, b = cfg.crop_frames, cfg.batch_size
    mels = torch.zeros(b, utts[0].mel.shape[0], crop)
    mask = torch.zeros(b, 1, crop)
    picks = rng.choice(len(utts), size=b, p=weights)
    for row, j in enumerate(picks):
        u = utts[j]
        n = u.mel.shape[1]
        s = int(rng.integers(0, max(1, n - crop + 1)))
        m = min(crop, n - s)
        fill(row, u, s, m)
        mels[row, :, :m] = u.mel[:, s : s + m].float()
        mask[row, :, :m] = 1.0
    return torch.tensor([utts[j].speaker for j in picks]), mels, mask


def _batch(utts: Sequence[MelUtt], cfg: MelTrainConfig, rng: np.random.Generator, weights: np.ndarray):
    """(B, crop) codes, (B,) speakers, (B, n_mels, crop) targets, (B, 1, crop) mask of real frames."""
    codes = torch.zeros(cfg.batch_size, cfg.crop_frames, dtype=torch.long)

    def fill(row: int, u: MelUtt, s: int, m: int) -> None:
        codes[row, :m] = u.codes[int(rng.integers(len(u.codes)))][s : s + m].long()

    return codes, *pick_crops(utts, cfg, rng, weights, fill)


@torch.no_grad()
def evaluate(net: CodeMelNet, utts: Sequence[MelUtt]) -> dict:
    """Whole held-out utterances (unshifted codes): {"l1", "speaker_gain", "utterances"}; the gain tells
    each utterance it is the next speaker (in the table order of those present) instead of its own."""
    if not utts:
        return {"l1": None, "speaker_gain": None, "utterances": 0}
    net.eval()
    dev = net.out.weight.device
    present = sorted({u.speaker for u in utts})
    other = {s: present[(k + 1) % len(present)] for k, s in enumerate(present)}
    own, wrong, frames = 0.0, 0.0, 0
    for u in utts:
        codes, target = u.codes[0].long()[None].to(dev), u.mel.float()[None].to(dev)
        own += float((net(codes, torch.tensor([u.speaker], device=dev)) - target).abs().mean(1).sum())
        wrong += float((net(codes, torch.tensor([other[u.speaker]], device=dev)) - target).abs().mean(1).sum())
        frames += target.shape[2]
    net.train()
    gain = (wrong - own) / max(frames, 1) if len(present) > 1 else None
    return {"l1": own / max(frames, 1), "speaker_gain": gain, "utterances": len(utts)}


def train_melnet(
    train: Sequence[MelUtt],
    val: Sequence[MelUtt],
    codebook_size: int,
    n_speakers: int,
    cfg: MelTrainConfig,
    log: Callable[[str], None] = lambda _m: None,
    device: str | torch.device = "cpu",
) -> tuple[CodeMelNet, dict]:
    """A mel net fitted to `train` on `device`; returns it (eval mode, on the CPU) and its metrics (the
    last validation's, steps, seconds, and the history of validations)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = new_melnet(cfg.preset, codebook_size, n_speakers, train).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    lengths = np.array([u.mel.shape[1] for u in train], np.float64)
    weights = lengths / lengths.sum()
    history, t0, step, loss_sum = [], time.monotonic(), 0, 0.0
    lr = cfg.lr
    while (next_lr := scheduled_lr(cfg, step, time.monotonic() - t0)) is not None:
        lr = next_lr
        for g in opt.param_groups:
            g["lr"] = lr
        codes, spk, mels, mask = (t.to(device) for t in _batch(train, cfg, rng, weights))
        loss, l1 = mel_loss(net(codes, spk), mels, mask, cfg.delta_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        loss_sum += l1.item()
        if cfg.validate_every and step % cfg.validate_every == 0:
            history.append(report(net, val, step, loss_sum / cfg.validate_every, time.monotonic() - t0, lr, log))
            loss_sum = 0.0
    seconds = time.monotonic() - t0
    if not history or history[-1]["step"] != step:
        history.append(report(net, val, step, None, seconds, lr, log))
    net.eval().cpu()
    return net, summary(history, step, seconds, len(val))


def report(net, val, step, train_l1, seconds, lr, log, extra: dict | None = None, note: str = "") -> dict:
    """Validate `net` on `val` (MelUtts), log one line (plus `note`) and return the history row (plus `extra`)."""
    m = evaluate(net, val)
    row = {
        "step": step,
        "train_l1": train_l1,
        "val_l1": m["l1"],
        "val_speaker_gain": m["speaker_gain"],
        **(extra or {}),
        "seconds": round(seconds, 1),
        "lr": lr,
    }
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    log(
        f"step {step} ({seconds:.0f} s): train L1 {fmt(train_l1)}, held-out L1 {fmt(m['l1'])}, "
        f"speaker gain {fmt(m['speaker_gain'])}{note}"
    )
    return row


def summary(history: list[dict], steps: int, seconds: float, val_utterances: int) -> dict:
    """The metrics a mel net file keeps: the last validation's, the run's length and the whole history."""
    last = history[-1]
    common = ("step", "train_l1", "val_l1", "val_speaker_gain", "seconds", "lr")
    extra = {k: v for k, v in last.items() if k not in common}
    return {
        "steps": steps,
        "seconds": round(seconds, 1),
        "val_l1": last["val_l1"],
        "val_speaker_gain": last["val_speaker_gain"],
        **extra,
        "val_utterances": val_utterances,
        "history": history,
    }
