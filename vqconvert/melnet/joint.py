"""Tuning a VQ-VAE's encoder and codebook for the mel path: waveform -> encoder -> VQ -> mel net, trained
together with the mel net's L1 (plus the VQ's codebook and commitment losses), starting from a model and a
mel net trained on its frozen codes. The codes then keep what the log-mel needs, not only what the WaveNet's
teacher-forced likelihood rewarded.

The mel net reads code indices (`CodeMelNet.code`); to let the loss reach the encoder, training adds a
projection of the straight-through code vectors, zero at the start (so step 0 is the given pair exactly),
which is folded into the index embedding afterwards: the result is a plain CodeMelNet. `freeze_encoder`
trains only the mel net, on codes computed the same way, as the control of an A/B at equal time.

The encoder input is pitch-shifted by U(-p, p) semitones for a share of the crops (the target is always the
unshifted log-mel), so the voice must come from the speaker embedding. Dead-code restarts are off: an
index keeps its meaning unless its vector is learnt elsewhere. The model's WaveNet is not trained here; after
tuning it reads codes it was not trained on (train it on the new codes: `vqconvert train --codes-from`)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vqconvert.audio import pitch_shift
from vqconvert.melnet.model import CodeMelNet
from vqconvert.melnet.train import (
    MelUtt,
    ScheduleConfig,
    encode_once,
    mel_loss,
    pick_crops,
    report,
    scheduled_lr,
    summary,
)
from vqconvert.model.encoding import nearest_code


@dataclass(frozen=True)
class TuneConfig(ScheduleConfig):
    lr: float = 3e-4
    validate_every: int = 500
    encoder_lr_ratio: float = 0.1  # the encoder's and codebook's lr relative to the mel net's (a fine-tune)
    perturb_prob: float = 0.5  # share of crops pitch-shifted before the encoder
    perturb_semitones: float = 5.0
    freeze_encoder: bool = False
    dead_code_restarts: bool = False  # keep the quantizer's restarts (a model trained from scratch needs them)


@dataclass
class AudioUtt:
    index: int  # in the audio cache
    mel: torch.Tensor  # (n_mels, F) float16 log-mel of the unshifted audio
    speaker: int
    name: str


def fold(net: CodeMelNet, proj: nn.Linear, codebook: torch.Tensor) -> CodeMelNet:
    """A copy of `net` whose index embedding includes `proj` of each code vector: (K, D) codebook."""
    out = copy.deepcopy(net)
    with torch.no_grad():
        out.code.weight += proj(codebook.to(proj.weight)).to(out.code.weight)
    return out


def _val_utts(model, cache, val: Sequence[AudioUtt], hop: int) -> list[MelUtt]:
    out = []
    for u in val:
        a = np.asarray(cache.audio(u.index), np.float32)
        out.append(MelUtt([encode_once(model, a[: u.mel.shape[1] * hop])], u.mel, u.speaker, u.name))
    return out


def _report(model, net, proj, cache, val, first, hop, step, train_l1, seconds, lr, log) -> dict:
    model.eval()
    utts = _val_utts(model, cache, val, hop)
    model.train()
    changed = sum(int((a.codes[0] != b).sum()) for a, b in zip(utts, first, strict=True))
    share = changed / max(sum(b.numel() for b in first), 1)
    folded = fold(net, proj, model.quantizer.codebook.detach())
    note = f", held-out codes changed {100 * share:.1f}%"
    return report(folded, utts, step, train_l1, seconds, lr, log, {"codes_changed": share}, note)


def _batch(cache, utts, cfg: TuneConfig, hop: int, rng: np.random.Generator, weights: np.ndarray):
    """(B, crop * hop) encoder input, (B,) speakers, (B, n_mels, crop) targets, (B, 1, crop) mask."""
    audio = np.zeros((cfg.batch_size, cfg.crop_frames * hop), np.float32)

    def fill(row: int, u: AudioUtt, s: int, m: int) -> None:
        a = cache.crop(u.index, s * hop, m * hop)
        if rng.random() < cfg.perturb_prob:
            a = pitch_shift(a, float(rng.uniform(-cfg.perturb_semitones, cfg.perturb_semitones)))
        audio[row, : m * hop] = a

    return torch.from_numpy(audio), *pick_crops(utts, cfg, rng, weights, fill)


def tune_encoder(
    model,
    net: CodeMelNet,
    cache,
    train: Sequence[AudioUtt],
    val: Sequence[AudioUtt],
    cfg: TuneConfig,
    log: Callable[[str], None] = lambda _m: None,
    device: str | torch.device = "cpu",
) -> tuple[object, CodeMelNet, dict]:
    """Train `model`'s encoder and codebook (unless frozen) with `net` on the cache's audio, on `device`.
    Returns the model (eval mode), the folded mel net (eval mode), both on the CPU, and the metrics with
    the history."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    hop = model.cfg.hop
    model, net = model.float().to(device).train(), net.float().to(device).train()
    q = model.quantizer
    restart = q.dead_code_steps
    if not cfg.dead_code_restarts:
        q.dead_code_steps = 0
    proj = nn.Linear(q.dim, net.cfg.channels).to(device)
    nn.init.zeros_(proj.weight)
    nn.init.zeros_(proj.bias)
    groups = [{"params": list(net.parameters()) + list(proj.parameters()), "ratio": 1.0}]
    if not cfg.freeze_encoder:
        groups.append({"params": list(model.encoder.parameters()) + [q.codebook], "ratio": cfg.encoder_lr_ratio})
    params = [p for g in groups for p in g["params"]]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.0)
    lengths = np.array([u.mel.shape[1] for u in train], np.float64)
    weights = lengths / lengths.sum()
    model.eval()
    first = [u.codes[0] for u in _val_utts(model, cache, val, hop)]
    model.train()
    history, t0, step, l1_sum, lr = [], time.monotonic(), 0, 0.0, cfg.lr
    while (next_lr := scheduled_lr(cfg, step, time.monotonic() - t0)) is not None:
        lr = next_lr
        for g in opt.param_groups:
            g["lr"] = lr * g["ratio"]
        audio, spk, mels, mask = (t.to(device) for t in _batch(cache, train, cfg, hop, rng, weights))
        if cfg.freeze_encoder:
            with torch.no_grad():
                z = model.encoder(audio)
                idx = nearest_code(z.transpose(1, 2).reshape(-1, q.dim), q.codebook).view(z.shape[0], -1)
            emb, vq = net.code(idx), 0.0
        else:
            out = q(model.encoder(audio))
            emb = net.code(out.indices) + proj(out.z_q.transpose(1, 2))
            vq = out.codebook_loss + out.commitment_loss
        loss, l1 = mel_loss(net.from_embedded(emb, spk), mels, mask)
        opt.zero_grad(set_to_none=True)
        (loss + vq).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        step += 1
        l1_sum += l1.item()
        if cfg.validate_every and step % cfg.validate_every == 0:
            row = _report(model, net, proj, cache, val, first, hop, step, l1_sum / cfg.validate_every,
                          time.monotonic() - t0, lr, log)  # fmt: skip
            history.append(row)
            l1_sum = 0.0
    seconds = time.monotonic() - t0
    if not history or history[-1]["step"] != step:
        history.append(_report(model, net, proj, cache, val, first, hop, step, None, seconds, lr, log))
    q.dead_code_steps = restart
    for p in model.parameters():
        p.requires_grad_(True)
    folded = fold(net, proj, q.codebook.detach()).eval().cpu()
    return model.eval().cpu(), folded, summary(history, step, seconds, len(val))
