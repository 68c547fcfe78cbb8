"""The local (codes) and global (speaker) conditioning of every decoder layer, computed block by block
for the generation engines, and the cache of the current block."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vqconvert.generate._core import Weights

BLOCK = 1024  # samples of conditioning computed at once ("repeat" upsampling)
COND_BUDGET = 64 << 20  # bytes of per-sample conditioning per block ("transposed" upsampling)


class Conditioner:
    """Local (codes) + global (speaker) conditioning of every layer, block by block.

    Frame features `frame_features(z_q, speaker)` are computed once per utterance (small: C floats per 64
    samples); the per-layer projection `cond_proj(u) + layer_bias(speaker)` is made per block: per frame
    for "repeat" upsampling (constant over a frame), per sample for "transposed".
    `perm` reorders the L*G gate rows of every layer (the C kernel interleaves tanh and sigmoid tiles).
    """

    def __init__(
        self, model, codes: list[torch.Tensor], speakers: list[int], w: Weights, perm: torch.Tensor | None = None
    ) -> None:
        cfg = model.cfg
        dec = model.decoder
        self.hop = cfg.hop
        self.transposed = cfg.upsample == "transposed"
        self.lengths = [int(c.numel()) * cfg.hop for c in codes]
        B = len(codes)
        fmax = max((int(c.numel()) for c in codes), default=0)
        dev = next(model.parameters()).device
        dtype = next(dec.parameters()).dtype
        u = torch.zeros(B, fmax + 1, w.C)  # one zero frame of slack for window slicing
        with torch.no_grad():
            spk = torch.as_tensor(list(speakers), dtype=torch.long, device=dev)
            for i, c in enumerate(codes):
                if c.numel() == 0:
                    continue
                zq = model.codes_to_latents(c.reshape(1, -1).to(dev, torch.long)).to(dtype)
                u[i, : c.numel()] = dec.frame_features(zq, spk[i : i + 1])[0].t().to("cpu", torch.float32)
            sb = dec.layer_bias(spk).to("cpu", torch.float32) if B else torch.zeros(0, w.L * w.G)
        self.u = u
        wc, bc = w.wc, w.bc
        if perm is not None:
            wc, bc, sb = wc[perm], bc[perm], sb[:, perm]
        self.wcT = wc.t().contiguous()
        self.bias = (sb + bc).contiguous()  # (B, L*G)
        if self.transposed:
            up = dec.upsample
            self.up_w = up.weight.detach().to("cpu", torch.float32)
            self.up_b = up.bias.detach().to("cpu", torch.float32)
            per_sample = max(1, B) * w.L * w.G * 4
            self.block = int(max(self.hop, min(BLOCK, COND_BUDGET // per_sample // self.hop * self.hop)))
        else:
            self.block = BLOCK
        self.width = w.L * w.G

    def features(self, ids: torch.Tensor, s0: int, s1: int) -> tuple[torch.Tensor, int, int]:
        """Features (len(ids), rows, C) for samples [s0, s1), the sample of row 0 and samples per row."""
        hop = self.hop
        if not self.transposed:
            f0, f1 = s0 // hop, -(-s1 // hop)
            return self.u[ids, f0:f1], f0 * hop, hop
        # ConvTranspose1d(C, C, 2 hop, stride hop, padding hop/2): sample t sees frames
        # floor((t + hop/2) / hop) - 1 and floor((t + hop/2) / hop); frames past the end are zero.
        half = hop // 2
        fa = max(0, (s0 + half) // hop - 1)
        fb = (s1 - 1 + half) // hop + 1
        win = self.u[ids, fa:fb].transpose(1, 2)  # zero rows past each utterance's end
        y = F.conv_transpose1d(win, self.up_w, self.up_b, stride=hop)
        j0 = s0 - fa * hop + half
        feat = torch.relu(y[:, :, j0 : j0 + (s1 - s0)]).transpose(1, 2)
        return feat, s0, 1

    def layer_cond(self, ids: torch.Tensor, s0: int, s1: int) -> tuple[torch.Tensor, int, int]:
        """Per-layer conditioning (len(ids), rows, L*G) for samples [s0, s1), row 0's sample, samples/row."""
        feat, base, div = self.features(ids, s0, s1)
        cond = torch.matmul(feat, self.wcT) + self.bias[ids][:, None, :]
        return cond.contiguous(), base, div


class CondCache:
    """The conditioning of the current block for the streams alive when the block started."""

    def __init__(self, cond: Conditioner) -> None:
        self.cond = cond
        self.key: int | None = None
        self.rows: dict[int, int] = {}
        self.value: tuple[torch.Tensor, int, int] | None = None

    def segments(self, ids: np.ndarray, t0: int, n: int):
        """Yield (a, b, cond, base, div, rows) for [t0, t0+n) cut at block edges; rows: each id's row
        in cond."""
        blk = self.cond.block
        t = t0
        while t < t0 + n:
            k = t // blk
            end = min(t0 + n, (k + 1) * blk)
            if self.key != k or any(int(i) not in self.rows for i in ids):
                lo = k * blk
                hi = min(lo + blk, max(self.cond.lengths))
                idt = torch.as_tensor(ids, dtype=torch.long)
                self.value = self.cond.layer_cond(idt, lo, hi)
                self.rows = {int(i): r for r, i in enumerate(ids)}
                self.key = k
            rows = np.array([self.rows[int(i)] for i in ids], dtype=np.int32)
            c, base, div = self.value
            yield t, end, c, base, div, rows
            t = end
