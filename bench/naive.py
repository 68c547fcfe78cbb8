"""The naive WaveNet generator the benchmark compares with: for every sample, the whole teacher-forced
decoder over the last receptive field (O(receptive field) per sample)."""

from __future__ import annotations

import numpy as np
import torch

from vqconvert.generate._core import sample_indices
from vqconvert.model.mulaw import SILENCE


@torch.no_grad()
def naive_generate(
    model,
    codes: torch.Tensor,
    speaker: int,
    n_samples: int,
    *,
    inv_temp: float = 1.0,
    greedy: bool = True,
    seed: int = 0,
    history: np.ndarray | None = None,
) -> np.ndarray:
    """The textbook way: for every sample, run the whole teacher-forced decoder over the last
    receptive-field samples and keep the last logits.
    `history`: mu-law samples already generated (the first len(history) samples of the codes' audio);
    with at least a receptive field of it, every sample costs the steady-state price."""
    cfg = model.cfg
    dev = next(model.parameters()).device
    rf = cfg.receptive_field
    zq = model.codes_to_latents(codes.reshape(1, -1).to(dev))
    spk = torch.tensor([speaker], device=dev)
    cond_all = model.decoder.cond_features(zq, spk)  # (1, C, T)
    dec = model.decoder
    rng = np.random.default_rng([seed, 0])
    hist = [SILENCE] + ([] if history is None else [int(v) for v in history])
    for t in range(len(hist) - 1, len(hist) - 1 + n_samples):
        lo = max(0, t + 1 - rf)
        prev = torch.tensor([hist[lo : t + 1]], device=dev)
        g = cfg.gate_channels
        cond = dec.layer_cond(cond_all[:, :, lo : t + 1], spk)
        x = dec.embed(prev).transpose(1, 2)
        skip = 0
        for i, (d, conv) in enumerate(zip(dec.dilations, dec.dilated, strict=True)):
            h = conv(torch.nn.functional.pad(x, (d, 0))) + cond[:, i * g : (i + 1) * g]
            z = torch.tanh(h[:, : g // 2]) * torch.sigmoid(h[:, g // 2 :])
            skip = skip + dec.skip[i](z)
            if i < len(dec.res):
                x = x + dec.res[i](z)
        logits = dec.head2(torch.relu(dec.head1(torch.relu(skip))))[:, :, -1].float().cpu()
        u = None if greedy else rng.random(1)
        hist.append(int(sample_indices(logits, inv_temp, greedy, u)[0]))
    return np.asarray(hist[len(hist) - n_samples :], dtype=np.int32)
