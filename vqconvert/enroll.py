"""Enrolment: add a voice to a trained model by fitting one new speaker embedding, all else frozen.

The decoder's only per-speaker parameter is its embedding table `model.decoder.speaker`
(n_speakers x speaker_dim). `extend_speakers` makes a model with one more row (initialised to the mean
of the existing rows) and the other weights copied unchanged; `enroll` then minimises the decoder's
teacher-forced NLL of the new voice's clips (`model.decode_logits`) over that row alone. The encoder and
codebook are untouched, so the model's fingerprint, and with it every codes file, stays valid.

No I/O here: clips come in as float32 arrays; `vqconvert.cli.enroll_cmd` reads files and writes the
checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vqconvert.audio import trim_silence
from vqconvert.errors import AudioError
from vqconvert.inference import encode_audio, pad_to_hop
from vqconvert.model import VQVAE
from vqconvert.model.mulaw import mu_law_encode

SPEAKER_TABLE = "decoder.speaker.weight"


@dataclass(frozen=True)
class EnrollConfig:
    """How a new voice is fitted (saved in the new checkpoint's metrics)."""

    steps: int = 150
    lr: float = 0.05  # Adam on the embedding row; rows of the shipped model have norms of 5-6
    batch_size: int = 4
    crop_seconds: float = 0.25
    eval_seconds: float = 8.0  # audio (from the start of the clips) scored before and after
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class EnrollResult:
    model: VQVAE  # the extended model, eval mode; the new voice is its last speaker
    index: int  # row of the new voice
    bits_before: float  # teacher-forced NLL of the clips (bits/sample) with the initial (mean) row
    bits_after: float
    nearest: str | None  # the existing speaker whose row is closest (cosine) to the fitted one
    clip_seconds: float
    seconds: float  # wall time of the fit

    def summary(self, name: str, config: EnrollConfig) -> dict:
        return {
            "name": name,
            "index": self.index,
            "bits_before": round(self.bits_before, 4),
            "bits_after": round(self.bits_after, 4),
            "nearest_existing_row": self.nearest,
            "clip_seconds": round(self.clip_seconds, 3),
            "fit_seconds": round(self.seconds, 1),
            "config": config.to_dict(),
        }


def check_new_name(name: str, speakers: Sequence[str]) -> None:
    """ValueError unless `name` can be a new speaker: not empty, not all digits (those mean indices),
    no whitespace, not already in the table."""
    if not name or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"speaker name {name!r} must be non-empty and hold no whitespace")
    if name.isdigit():
        raise ValueError(f"speaker name {name!r} is all digits, which --speaker reads as an index")
    if name in speakers:
        raise ValueError(f"the model already has a speaker named {name!r}; choose another --name")


def extend_speakers(model: VQVAE, init: torch.Tensor | None = None) -> VQVAE:
    """A copy of `model` with one more speaker row (default: the mean of the existing rows); every
    other tensor equal to the original's."""
    cfg = dataclasses.replace(model.cfg, n_speakers=model.cfg.n_speakers + 1)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    table = state[SPEAKER_TABLE]
    row = table.mean(0, keepdim=True) if init is None else init.reshape(1, -1).to(table)
    state[SPEAKER_TABLE] = torch.cat([table, row], 0)
    new = VQVAE(cfg)
    new.load_state_dict(state, strict=True)
    return new.to(next(model.parameters()).device).eval()


def prepare_clips(model: VQVAE, clips: Sequence[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Trim each clip's leading/trailing silence, pad to the hop, encode -> [(codes (F,), audio (F*hop,))]."""
    hop = model.cfg.hop
    out = []
    for clip in clips:
        audio = pad_to_hop(
            trim_silence(np.asarray(clip, np.float32).reshape(-1), sample_rate=model.cfg.sample_rate), hop
        )
        codes = encode_audio(model, audio)
        out.append((codes, torch.from_numpy(audio[: codes.numel() * hop].copy())))
    return out


def _windows(items, frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Deterministic (clip, start frame) windows of `frames` frames from the start of each clip, in turn,
    up to `max_frames` in all."""
    out, total, start = [], 0, 0
    while total < max_frames:
        added = False
        for i, (codes, _) in enumerate(items):
            if start + frames <= codes.numel() and total < max_frames:
                out.append((i, start))
                total += frames
                added = True
        if not added:
            break
        start += frames
    return out


def _batch(items, picks, frames: int, hop: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    codes = torch.stack([items[i][0][s : s + frames] for i, s in picks]).to(device)
    audio = torch.stack([items[i][1][s * hop : (s + frames) * hop] for i, s in picks]).to(device)
    return codes, audio


def _bits(model: VQVAE, codes: torch.Tensor, audio: torch.Tensor, speaker: int) -> torch.Tensor:
    spk = torch.full((codes.shape[0],), speaker, dtype=torch.long, device=codes.device)
    logits = model.decode_logits(codes, spk, audio)
    return F.cross_entropy(logits.float(), mu_law_encode(audio, model.cfg.mu_classes)) / math.log(2)


@torch.no_grad()
def score(model: VQVAE, items, windows, frames: int, speaker: int, batch: int = 4) -> float:
    """Mean teacher-forced NLL (bits/sample) of the windows decoded as `speaker`."""
    hop, device = model.cfg.hop, next(model.parameters()).device
    total = 0.0
    for b in range(0, len(windows), batch):
        picks = windows[b : b + batch]
        codes, audio = _batch(items, picks, frames, hop, device)
        total += float(_bits(model, codes, audio, speaker)) * len(picks)
    return total / max(len(windows), 1)


def clip_bits(
    model: VQVAE, clips: Sequence[np.ndarray], speaker: int, seconds: float = 8.0, crop_seconds: float = 0.25
) -> float:
    """Teacher-forced NLL (bits/sample) of up to `seconds` of `clips` decoded as `speaker`, in windows of
    `crop_seconds` as `enroll` scores them (e.g. held-out audio of an enrolled voice)."""
    items = prepare_clips(model, clips)
    frames = max(
        4, min(int(round(crop_seconds * model.cfg.sample_rate / model.cfg.hop)), *(c.numel() for c, _ in items))
    )
    windows = _windows(items, frames, max(int(seconds * model.cfg.sample_rate / model.cfg.hop), frames))
    return score(model, items, windows, frames, speaker)


def enroll(
    model: VQVAE,
    speakers: Sequence[str],
    clips: Sequence[np.ndarray],
    config: EnrollConfig = EnrollConfig(),
    log: Callable[[str], None] | None = None,
) -> EnrollResult:
    """Fit a new speaker row on `clips` ((T,) float32 at the model's rate); returns the extended model.

    Each step takes `batch_size` random crops of `crop_seconds` (shortened to the shortest clip) and
    takes one Adam step on the new row; gradients of every other row are zeroed and the original rows are
    restored at the end, so the rest of the model is bit-identical to `model`.
    """
    if not clips:
        raise AudioError("no clips to enrol")
    say = log or (lambda _msg: None)
    t0 = time.monotonic()
    model = model.eval()
    items = prepare_clips(model, clips)
    hop = model.cfg.hop
    clip_frames = [c.numel() for c, _ in items]
    if min(clip_frames) < 4:
        raise AudioError("a clip is too short to enrol (under 4 frames, 16 ms, after trimming silence)")
    frames = max(4, min(int(round(config.crop_seconds * model.cfg.sample_rate / hop)), min(clip_frames)))
    new = extend_speakers(model)
    index = new.cfg.n_speakers - 1
    eval_frames = int(config.eval_seconds * model.cfg.sample_rate / hop)
    windows = _windows(items, frames, max(eval_frames, frames))
    before = score(new, items, windows, frames, index, config.batch_size)
    say(
        f"enrol: {len(items)} clips, {sum(clip_frames) * hop / model.cfg.sample_rate:.1f} s; "
        f"initial (mean) row: {before:.3f} bits/sample"
    )

    for p in new.parameters():
        p.requires_grad_(False)
    table = new.decoder.speaker.weight
    original = table.detach().clone()
    table.requires_grad_(True)
    mask = torch.zeros_like(table)
    mask[index] = 1.0
    hook = table.register_hook(lambda g: g * mask)
    opt = torch.optim.Adam([table], lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    weights = torch.tensor([n - frames + 1 for n in clip_frames], dtype=torch.float)
    device = table.device
    for step in range(1, config.steps + 1):
        which = torch.multinomial(weights, config.batch_size, replacement=True, generator=gen).tolist()
        picks = [(i, int(torch.randint(0, clip_frames[i] - frames + 1, (1,), generator=gen))) for i in which]
        codes, audio = _batch(items, picks, frames, hop, device)
        loss = _bits(new, codes, audio, index)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step == 1 or step % 25 == 0 or step == config.steps:
            say(f"enrol step {step}/{config.steps}: {float(loss.detach()):.3f} bits/sample")
    hook.remove()
    with torch.no_grad():
        table.requires_grad_(False)
        keep = torch.ones(table.shape[0], dtype=torch.bool, device=device)
        keep[index] = False
        table[keep] = original[keep]
    after = score(new, items, windows, frames, index, config.batch_size)
    rows = table.detach()
    cos = F.cosine_similarity(rows[:index], rows[index : index + 1], dim=1)
    nearest = speakers[int(cos.argmax())] if index > 0 and len(speakers) == index else None
    say(f"enrolled: {after:.3f} bits/sample (from {before:.3f})")
    return EnrollResult(
        new, index, before, after, nearest, sum(clip_frames) * hop / model.cfg.sample_rate, time.monotonic() - t0
    )
