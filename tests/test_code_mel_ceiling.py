"""bench/code_mel_ceiling.py: the per-code mean table, the context of the dilated predictor, and that a
short fit learns a code -> mel mapping on toy data."""

from __future__ import annotations

import argparse

import pytest
import torch
from cli_helpers import bench_module

cm = bench_module("code_mel_ceiling")


def _toy(n_utts: int = 12, frames: int = 40, n_codes: int = 8) -> dict:
    """Each code has its own constant mel (code k -> all bins k), so a perfect predictor exists."""
    g = torch.Generator().manual_seed(0)
    codes = [torch.randint(0, n_codes - 1, (frames,), generator=g).to(torch.int16) for _ in range(n_utts)]
    mels = [c.float()[None].expand(80, -1).half() for c in codes]
    return {"codes": codes, "mels": mels, "spk": [i % 2 for i in range(n_utts)], "ids": [str(i) for i in range(n_utts)],
            "speakers": ["a", "b"]}


def test_fit_mean_gives_each_code_its_mean_and_unused_codes_the_global_mean():
    data = _toy()
    table = cm.fit_mean(data, list(range(12)), 8)
    for k in range(7):
        assert torch.allclose(table[k], torch.full((80,), float(k)))
    all_frames = torch.cat([c.float() for c in data["codes"]])
    assert torch.allclose(table[7], torch.full((80,), all_frames.mean().item()), atol=1e-4)  # code 7 never used


def test_net_context_is_what_its_name_says():
    net = cm.CodeMel(8, 2, 16, [1, 2, 4, 8], torch.zeros(80))
    codes = torch.zeros(1, 64, dtype=torch.long)
    base = net(codes, torch.tensor([0]))
    codes[0, 32] = 3
    changed = (net(codes, torch.tensor([0])) - base).abs().sum(dim=1)[0] > 0
    assert changed.nonzero().flatten().tolist() == list(range(32 - 15, 32 + 16))


def test_short_fit_learns_the_toy_mapping_and_rejects_a_bad_context():
    data = _toy()
    args = argparse.Namespace(seed=0, channels=16, lr=3e-2, crop_frames=32, batch=4, minutes=0.05)
    net = cm.fit_net(data, list(range(10)), [10, 11], 8, 3, args)
    l1 = cm.held_out_l1(lambda i: cm.predict_net(net, data, i), data, [10, 11])
    start = cm.held_out_l1(lambda i: torch.full((80, 40), 3.0), data, [10, 11])
    assert net.steps > 0 and l1 < 0.5 * start
    with pytest.raises(SystemExit):
        cm.fit_net(data, list(range(10)), [10, 11], 8, 4, args)
