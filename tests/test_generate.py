"""Incremental generation: every backend's step equals the teacher-forced decoder, sampling follows the
shared rule, seeds fix the samples, streaming equals one-shot, and the C kernel falls back to torch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vqconvert.config import preset
from vqconvert.generate import available_backends, clib, conditioning, engine_for, fast, generate, generate_stream
from vqconvert.generate._core import check_inputs, drive, sample_indices
from vqconvert.model import VQVAE
from vqconvert.model.mulaw import mu_law_encode
from vqconvert.sampling import SamplingOptions

HAVE_C = clib.load() is not None
needs_c = pytest.mark.skipif(not HAVE_C, reason="C generator cannot be built here (no gcc?)")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")

# backend name, engine options, logits tolerance
BACKENDS = {
    "torch": ("torch", {}, 2e-5),
    "c32": ("c", {"fp16": False, "threads": 1}, 2e-5),
    "c32x2": ("c", {"fp16": False, "threads": 2}, 2e-5),
    "c16": ("c", {"fp16": True, "threads": 1}, 5e-3),
    "graph-cpu": ("cuda", {"device": "cpu"}, 2e-5),
}


def _model(name: str = "tiny", upsample: str = "repeat", speakers: int = 3, seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    cfg = dataclasses.replace(preset(name, n_speakers=speakers), upsample=upsample)
    model = VQVAE(cfg).eval()
    with torch.no_grad():  # livelier logits than the init's, so argmax and sampling are not near-ties
        model.decoder.head2.weight.mul_(4.0)
    return model


def _codes(model: VQVAE, frames: list[int], seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, model.cfg.codebook_size, (f,), generator=g) for f in frames]


def _teacher(model, codes, speakers, audio) -> list[torch.Tensor]:
    with torch.no_grad():
        return [
            model.decode_logits(c[None], torch.tensor([s]), a[None])[0]
            for c, s, a in zip(codes, speakers, audio, strict=True)
        ]


def _backend(key: str):
    name, opts, tol = BACKENDS[key]
    if name == "c" and not HAVE_C:
        pytest.skip("C generator unavailable")
    return name, opts, tol


def _opts(backend: str, opts: dict | None = None, **kw) -> SamplingOptions:
    return SamplingOptions(temperature=kw.pop("temperature", 1.0), backend=backend, **(opts or {}), **kw)


def incremental_logits(model, codes, speakers, audio, backend: str = "torch", opts: dict | None = None):
    """Run the incremental step of `backend` teacher-forced on `audio` (per utterance (F_i * 64,) in
    [-1, 1]) and return per utterance its logits (Q, F_i * 64): the same quantity as
    `model.decode_logits`."""
    codes, speakers = check_inputs(model, codes, speakers)
    Q = model.cfg.mu_classes
    forced = [mu_law_encode(torch.as_tensor(a).reshape(-1).float().cpu(), Q).numpy().astype(np.int32) for a in audio]
    eng, lengths, _ = engine_for(model, codes, speakers, _opts(backend, opts, greedy=True))
    assert [len(f) for f in forced] == lengths
    parts: list[list[np.ndarray]] = [[] for _ in codes]
    for _, lg in drive(
        eng, lengths, chunk_samples=1 << 30, inv_temp=1.0, greedy=True, seed=0, forced=forced, want_logits=True
    ):
        for i, a in enumerate(lg):
            parts[i].append(a)
    return [torch.from_numpy(np.concatenate(p) if p else np.zeros((0, Q), np.float32)).t().contiguous() for p in parts]


@pytest.mark.parametrize("key", list(BACKENDS))
@pytest.mark.parametrize("upsample", ["repeat", "transposed"])
@pytest.mark.parametrize(
    "name,frames", [("tiny", [5, 2, 3]), ("tiny-cond", [5, 2, 3]), ("tiny-melcond", [5, 2]), ("small", [3, 1])]
)
def test_incremental_logits_equal_teacher_forcing(key, upsample, name, frames, monkeypatch):
    """Greedy generation, then: the incremental logits on the generated audio equal the teacher-forced
    ones, and every generated sample is their argmax (the generation loop itself is right)."""
    backend, opts, tol = _backend(key)
    monkeypatch.setattr(conditioning, "BLOCK", 128)  # several conditioning blocks
    model = _model(name, upsample)
    codes, speakers = _codes(model, frames), [2, 0, 1][: len(frames)]
    audio = generate(model, codes, speakers, _opts(backend, opts, greedy=True))
    assert [a.shape[0] for a in audio] == [64 * f for f in frames]
    ref = _teacher(model, codes, speakers, audio)
    inc = incremental_logits(model, codes, speakers, audio, backend, opts)
    for r, x, a in zip(ref, inc, audio, strict=True):
        assert x.shape == r.shape
        assert torch.allclose(x, r, atol=tol, rtol=0), float((x - r).abs().max())
        picked = mu_law_encode(a)
        agree = (r.argmax(0) == picked).float().mean().item()
        assert agree == 1.0 if tol < 1e-4 else agree > 0.97


@pytest.mark.parametrize("key", ["torch", "c32"])
def test_paper_preset_short(key):
    backend, opts, tol = _backend(key)
    model = _model("paper")
    codes, speakers = _codes(model, [1]), [1]
    audio = [torch.rand(64) * 2 - 1]
    ref = _teacher(model, codes, speakers, audio)
    inc = incremental_logits(model, codes, speakers, audio, backend, opts)
    assert torch.allclose(inc[0], ref[0], atol=5e-5, rtol=0), float((inc[0] - ref[0]).abs().max())


@pytest.mark.parametrize("key", ["torch", "c32", "graph-cpu"])
def test_sampling_follows_the_shared_rule(key):
    """Sampled generation picks, at each step, the inverse CDF of softmax(logits / T) at the uniforms of
    the utterance's generator default_rng([seed, i])."""
    backend, opts, _ = _backend(key)
    model = _model("tiny", "transposed")
    codes, speakers, seed, temp = _codes(model, [4, 2]), [1, 2], 11, 0.7
    audio = generate(model, codes, speakers, _opts(backend, opts, seed=seed, temperature=temp))
    ref = _teacher(model, codes, speakers, audio)
    inv_t = float(np.float32(1 / temp))
    for i, (r, a) in enumerate(zip(ref, audio, strict=True)):
        u = np.random.default_rng([seed, i]).random(a.shape[0])
        want = sample_indices(r.t().contiguous(), inv_t, False, u)
        assert torch.equal(want, mu_law_encode(a))


@pytest.mark.parametrize("key", ["torch", "c32", "c16", "graph-cpu"])
def test_same_seed_same_samples(key):
    backend, opts, _ = _backend(key)
    model = _model()
    codes, speakers = _codes(model, [3, 2]), [0, 1]
    a = generate(model, codes, speakers, _opts(backend, opts, seed=5))
    b = generate(model, codes, speakers, _opts(backend, opts, seed=5))
    c = generate(model, codes, speakers, _opts(backend, opts, seed=6))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert all(x.dtype == torch.float32 and x.abs().max() <= 1.0 for x in a)


@needs_c
@pytest.mark.parametrize("greedy", [True, False])
def test_c_and_torch_give_the_same_samples(greedy):
    model = _model("tiny", "repeat")
    codes, speakers = _codes(model, [6, 3, 1]), [2, 1, 0]
    kw = dict(seed=3, greedy=greedy, temperature=0.8)
    t = generate(model, codes, speakers, _opts("torch", **kw))
    c = generate(model, codes, speakers, _opts("c", {"fp16": False}, **kw))
    c2 = generate(model, codes, speakers, _opts("c", {"fp16": False, "threads": 2}, **kw))
    g = generate(model, codes, speakers, _opts("cuda", {"device": "cpu"}, **kw))
    for x, y, z, v in zip(t, c, c2, g, strict=True):
        assert torch.equal(x, y) and torch.equal(y, z) and torch.equal(x, v)


@pytest.mark.parametrize("key", ["torch", "c16", "graph-cpu"])
def test_stream_concatenation_equals_generate(key, monkeypatch):
    backend, opts, _ = _backend(key)
    monkeypatch.setattr(conditioning, "BLOCK", 256)
    model = _model("tiny", "transposed")
    codes, speakers = _codes(model, [12, 3, 0, 1]), [0, 1, 2, 0]
    whole = generate(model, codes, speakers, _opts(backend, opts, seed=9))
    steps = list(generate_stream(model, codes, speakers, _opts(backend, opts, seed=9), chunk_samples=100))
    assert len(steps) == -(-12 * 64 // 100)
    for step in steps:
        assert len(step) == 4 and all(p.shape[0] <= 100 and p.dtype == torch.float32 for p in step)
    assert steps[-1][1].numel() == 0 and steps[0][2].numel() == 0  # finished / empty utterances
    for i in range(4):
        assert torch.equal(torch.cat([s[i] for s in steps]), whole[i])
    assert [w.shape[0] for w in whole] == [768, 192, 0, 64]


def test_empty_and_single_frame_inputs():
    model = _model()
    assert generate(model, [], []) == []
    out = generate(model, [torch.zeros(0, dtype=torch.long)], [0], _opts("torch"))
    assert out[0].shape == (0,)
    out = generate(model, [torch.tensor([3])], [1], _opts("auto", seed=0))
    assert out[0].shape == (64,)
    assert list(generate_stream(model, [torch.zeros(0, dtype=torch.long)], [0])) == []


def test_bad_arguments():
    model = _model()
    codes = _codes(model, [2])
    with pytest.raises(ValueError, match="backend"):
        generate(model, codes, [0], _opts("gpu"))
    with pytest.raises(ValueError, match="temperature"):
        generate(model, codes, [0], _opts("auto", temperature=-1.0))
    with pytest.raises(ValueError, match="speakers"):
        generate(model, codes, [0, 1])
    with pytest.raises(ValueError, match="speakers"):
        generate(model, codes, [7])
    with pytest.raises(ValueError, match="outside"):
        generate(model, [torch.tensor([0, 99])], [0])
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            generate(model, codes, [0], _opts("cuda"))


def test_progress_reports_every_sample():
    model = _model()
    seen = []
    codes = _codes(model, [300, 2])
    generate(model, codes, [0, 1], _opts("auto", greedy=True), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (302 * 64, 302 * 64)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))


def test_missing_c_build_falls_back_to_torch(tmp_path, monkeypatch):
    model = _model()
    codes, speakers = _codes(model, [3]), [1]
    want = generate(model, codes, speakers, _opts("torch", seed=2))
    monkeypatch.setattr(clib, "candidates", lambda: [tmp_path / "nowhere" / "lib.so"])
    monkeypatch.setattr(clib, "STATE", clib.LoadState())  # as in a fresh process
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with pytest.warns(clib.GeneratorWarning, match="fast C generator unavailable") as caught:
        got = generate(model, codes, speakers, _opts("c", seed=2))
        again = generate(model, codes, speakers, _opts("auto", seed=2))
        assert "c" not in available_backends()
    assert len(caught) == 1
    assert torch.equal(got[0], want[0]) and torch.equal(again[0], want[0])


@needs_c
def test_stale_library_is_not_loaded(tmp_path):
    good = next(p for p in clib.candidates() if p.is_file() and clib.open_library(p) is not None)
    stale = tmp_path / "stale.so"
    stale.write_bytes(good.read_bytes().replace(b"WGBUILDID:", b"WGBUILDID:x"))
    assert clib.open_library(stale) is None
    assert clib.open_library(tmp_path / "missing.so") is None


@needs_c
@pytest.mark.slow
def test_build_into_given_path(tmp_path):
    path = clib.build(tmp_path / "k.so")
    assert clib.open_library(path) is not None
    assert clib.main(["--build", "--dest", str(path)]) == 0


@needs_cuda
@pytest.mark.parametrize("upsample", ["repeat", "transposed"])
def test_cuda_graph_matches_torch(upsample):
    model = _model("small", upsample)
    codes, speakers = _codes(model, [4, 2]), [1, 2]
    audio = generate(model, codes, speakers, _opts("torch", greedy=True))
    ref = _teacher(model, codes, speakers, audio)
    inc = incremental_logits(model.cuda(), codes, speakers, audio, "cuda")
    for r, x in zip(ref, inc, strict=True):
        assert torch.allclose(x, r, atol=1e-3, rtol=0), float((x - r).abs().max())
    got = generate(model, codes, speakers, _opts("auto", greedy=True))  # auto: the model is on CUDA
    for r, a in zip(_teacher(model.cpu(), codes, speakers, got), got, strict=True):
        assert (r.argmax(0) == mu_law_encode(a)).float().mean().item() > 0.99


def test_thread_choice_prefers_the_cheaper_and_keeps_probing():
    tc = fast.ThreadChoice()
    assert tc.pick(10) == (1, False)  # too little work per step for two threads
    big = 10**6
    assert tc.pick(big) == (1, True)  # one thread first (it also pays the cold start)
    tc.report(1, 0.5, 100, -1)
    assert tc.pick(big) == (2, True)
    tc.report(2, 1.0, 100, -1)
    picks = []
    for _ in range(60):
        th, probe = tc.pick(big)
        picks.append(th)
        tc.report(th, 1.0 if th == 2 else 0.5, 100, -1)
    assert 2 <= picks.count(2) <= 4 and tc.every > 8  # ever rarer probes of the losing choice
    fresh = fast.ThreadChoice()
    fresh.report(2, 1.0, 100, 5)  # a 2-thread call that had to finish alone counts double
    assert fresh.cost[2] == pytest.approx(0.02)
