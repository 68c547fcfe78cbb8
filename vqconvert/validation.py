"""Teacher-forced validation of a model over held-out crops: what the trainer logs as `val_*`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F

from vqconvert.model.mulaw import mu_law_encode
from vqconvert.stats import entropy_bits, perplexity, speaker_gain


@torch.no_grad()
def validate(
    model,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_speakers: int,
    autocast: Callable[[], AbstractContextManager],
) -> dict:
    """Over (audio (B, T), speaker (B,)) batches: NLL in bits/sample, the unconditional mu-law entropy
    (the baseline), codebook perplexity and codes used, the speaker gain (NLL decoding as another
    speaker minus as the true one, bits) and, with a mel head, its L1. Leaves `model` in eval mode."""
    model.eval()
    cfg = model.cfg
    nll, other_nll, mel, n = 0.0, 0.0, 0.0, 0
    counts, hist = torch.zeros(cfg.codebook_size), torch.zeros(cfg.mu_classes)
    for audio, spk in batches:
        b = len(spk)
        with autocast():
            codes = model.encode(audio)
            logits = model.decode_logits(codes, spk, audio)
            # The same crops decoded as another speaker: how much the speaker embedding helps.
            other = (spk + 1 + torch.arange(b, device=spk.device) % max(n_speakers - 1, 1)) % n_speakers
            other_logits = model.decode_logits(codes, other, audio) if n_speakers > 1 else logits
            if cfg.mel_bins > 0:
                mel_pred = model.decoder.conditioning(model.codes_to_latents(codes), spk)[1]
                mel += float(model.mel_loss(mel_pred, audio)) * b
        target = mu_law_encode(audio, cfg.mu_classes)
        nll += float(F.cross_entropy(logits.float(), target)) * b
        other_nll += float(F.cross_entropy(other_logits.float(), target)) * b
        hist += torch.bincount(target.flatten().cpu(), minlength=hist.numel()).float()
        counts += torch.bincount(codes.flatten().cpu(), minlength=counts.numel()).float()
        n += b
    if n == 0:
        return {}
    out = {
        "val_bits": nll / n / math.log(2),
        "val_marginal_bits": entropy_bits(hist.numpy()),
        "val_perplexity": perplexity(counts.numpy()),
        "val_codes_used": int((counts > 0).sum()),
        # nll, other_nll: per-crop NLLs (nats) summed over the n crops, each with one other speaker
        "val_speaker_gain_bits": speaker_gain(nll, [other_nll]) / n / math.log(2),
    }
    if cfg.mel_bins > 0:
        out["val_mel_l1"] = mel / n
    return out
