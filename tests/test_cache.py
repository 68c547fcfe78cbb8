"""vqconvert.data.cache and dataset: build, reuse, keys, atomicity, skipped files, crops."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from vqconvert.audio import load_audio, trim_silence
from vqconvert.data import cache as cache_mod
from vqconvert.data.cache import AudioCache, build_cache, load_or_build_cache
from vqconvert.data.corpus import split_utterances
from vqconvert.data.dataset import CropDataset, fixed_crops, sampling_indices
from vqconvert.errors import DataError


def _entries(cache_dir):
    return sorted(p.name for p in cache_dir.iterdir()) if cache_dir.exists() else []


def test_build_and_read(vctk080_tree, tmp_path):
    cache = build_cache([vctk080_tree], tmp_path / "cache", progress=False)
    assert len(cache) == 10 and cache.speakers == ["p225", "p280", "p315", "p376"]
    assert cache.sample_rate == 16000 and cache.path.parent == tmp_path / "cache"
    e = cache.utterances[0]
    assert (e.speaker, e.utt_id, e.text) == ("p225", "p225_001", "Sentence 1 of p225.")
    x = cache.audio(0)
    assert x.dtype == np.float32 and x.shape == (e.length,)
    assert 3200 < e.length < 4800  # 0.1 s of leading silence trimmed, 0.05 s pad kept
    ref = trim_silence(load_audio(e.path), top_db=40.0)
    np.testing.assert_allclose(x, ref, atol=1.5 / 32768)
    np.testing.assert_array_equal(cache.crop(0, 100, 50), x[100:150])
    tail = cache.crop(0, e.length - 10, 64)
    np.testing.assert_array_equal(tail[:10], x[-10:])
    assert not tail[10:].any()
    train, val = split_utterances(cache.utterances, val_fraction=0.2, holdout=["p225_00[12]"])
    assert {u.key for u in val} >= {"p225/p225_001", "p225/p225_002"} and len(train) + len(val) == 10
    assert all(any(u is e for e in cache.utterances) for u in train + val)
    assert cache.total_seconds == pytest.approx(sum(u.length for u in cache.utterances) / 16000)
    untrimmed = build_cache(vctk080_tree, tmp_path / "cache", trim_db=None, progress=False)
    assert all(u.length == 4800 for u in untrimmed.utterances)


def test_reopen_without_rebuild(vctk080_tree, tmp_path, monkeypatch):
    first = load_or_build_cache([vctk080_tree], tmp_path / "c", progress=False)

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt a valid cache")

    monkeypatch.setattr(cache_mod, "_build", no_build)
    again = load_or_build_cache([str(vctk080_tree)], tmp_path / "c", progress=False)
    assert again.path == first.path and len(again) == len(first)
    np.testing.assert_array_equal(again.audio(3), first.audio(3))
    assert AudioCache.open(first.path).key == first.key


def test_key_changes_with_settings_and_files(vctk080_tree, tmp_path):
    base = load_or_build_cache(vctk080_tree, tmp_path / "c", progress=False)
    other_rate = load_or_build_cache(vctk080_tree, tmp_path / "c", sample_rate=8000, progress=False)
    assert other_rate.key != base.key and other_rate.sample_rate == 8000
    path = vctk080_tree / "wav48" / "p225" / "p225_001.wav"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load_or_build_cache(vctk080_tree, tmp_path / "c", progress=False).key != base.key


def test_interrupted_build_leaves_nothing_trusted(vctk080_tree, tmp_path, monkeypatch):
    calls = []
    real = cache_mod.load_audio

    def flaky(path, sr):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, sr)

    monkeypatch.setattr(cache_mod, "load_audio", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_cache(vctk080_tree, tmp_path / "c", progress=False)
    assert _entries(tmp_path / "c") == []
    monkeypatch.setattr(cache_mod, "load_audio", real)
    # a build killed hard leaves a temp dir and maybe a half-written final dir: neither is trusted
    cache = load_or_build_cache(vctk080_tree, tmp_path / "c", progress=False)
    (tmp_path / "c" / ".tmp-0123456789abcdef-999999999").mkdir()
    index = cache.path / "index.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "complete": False}))
    with pytest.raises(DataError, match="incomplete"):
        AudioCache.open(cache.path)
    rebuilt = load_or_build_cache(vctk080_tree, tmp_path / "c", progress=False)
    assert rebuilt.path == cache.path and len(rebuilt) == 10
    assert _entries(tmp_path / "c") == [cache.key]
    with pytest.raises(DataError, match="no index.json"):
        AudioCache.open(tmp_path)


def test_unreadable_files_skipped(vctk080_tree, tmp_path, capsys):
    bad = vctk080_tree / "wav48" / "p280" / "p280_002.wav"
    bad.write_bytes(bad.read_bytes()[:30])
    cache = build_cache(vctk080_tree, tmp_path / "c", progress=False)
    assert len(cache) == 9 and cache.skipped == [str(bad)]
    err = capsys.readouterr().err
    assert str(bad) in err and "skipped 1 of 10" in err
    for wav in (vctk080_tree / "wav48").rglob("*.wav"):
        wav.write_text("not audio")
    with pytest.raises(DataError, match="none of the 10"):
        build_cache(vctk080_tree, tmp_path / "c2", progress=False)
    assert _entries(tmp_path / "c2") == []


def test_jobs_and_progress_same_result(generic_tree, vctk092_tree, tmp_path):
    one = build_cache([generic_tree, vctk092_tree], tmp_path / "a", progress=False)
    two = build_cache([generic_tree, vctk092_tree], tmp_path / "b", progress=True, jobs=2)
    assert one.key == two.key and len(one) == len(two) == 18
    np.testing.assert_array_equal(np.asarray(one.samples), np.asarray(two.samples))
    restored = pickle.loads(pickle.dumps(two))
    assert restored._samples is None and len(pickle.dumps(two)) < 20_000
    np.testing.assert_array_equal(restored.audio(5), two.audio(5))


def test_crop_dataset(vctk080_tree, tmp_path):
    cache = build_cache(vctk080_tree, tmp_path / "c", trim_db=None, progress=False)
    speakers = {s: i for i, s in enumerate(cache.speakers)}
    ds = CropDataset(cache, [0, 3, 6], crop=1024, speaker_index=speakers, seed=1, epoch_size=7, shuffle=False)
    assert len(ds) == 7
    audio, spk = ds[4]
    assert audio.shape == (1024,) and audio.dtype == torch.float32
    assert spk.shape == () and spk.dtype == torch.long and spk.item() == speakers["p280"]
    assert not torch.equal(ds[4][0], ds[1][0])  # same utterance, other item: other crop
    assert torch.equal(ds[2][0], CropDataset(cache, [0, 3, 6], 1024, speakers, seed=1, shuffle=False)[2][0])
    assert not torch.equal(ds[2][0], CropDataset(cache, [0, 3, 6], 1024, speakers, seed=2, shuffle=False)[2][0])
    before = ds[2][0]
    ds.set_epoch(1)
    assert not torch.equal(ds[2][0], before)
    ds.set_epoch(0)
    assert torch.equal(ds[2][0], before)
    long = CropDataset(cache, [0], crop=8192, speaker_index=speakers)  # longer than the 4800-sample clip
    padded = long[0][0]
    assert padded.shape == (8192,) and (padded != 0).sum() <= 4800
    with pytest.raises(ValueError, match="multiple of 64"):
        CropDataset(cache, [0], crop=1000, speaker_index=speakers)
    crops = fixed_crops(cache, [0, 1], 1024, speakers)
    assert len(crops) == 2 and crops[0][0].shape == (1024,)
    np.testing.assert_array_equal(crops[0][0].numpy(), cache.audio(0)[1888:2912])
    assert torch.equal(fixed_crops(cache, [0, 1], 1024, speakers)[1][0], crops[1][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    batch_audio, batch_spk = next(iter(loader))
    assert batch_audio.shape == (4, 1024) and batch_spk.shape == (4,)


def test_crop_dataset_shuffles_each_pass(vctk080_tree, tmp_path):
    """Indices come sorted by speaker; training must not see one speaker for many batches in a row."""
    cache = build_cache(vctk080_tree, tmp_path / "c", trim_db=None, progress=False)
    speakers = {s: i for i, s in enumerate(cache.speakers)}
    ix = sorted(range(len(cache)), key=lambda i: cache.utterances[i].speaker)
    ds = CropDataset(cache, ix, crop=1024, speaker_index=speakers, seed=3)
    n = len(ix)

    def utterances(d: CropDataset, start: int) -> list[int]:  # which utterances items start.. crop
        return [d.indices[d._position(m)] for m in range(start, start + n)]

    passes = [utterances(ds, p * n) for p in range(3)]
    for order in passes:
        assert sorted(order) == sorted(ix)  # each pass visits every utterance once
    assert passes[0] != passes[1] != passes[2] and passes[0] != ix
    # Reproducible: a new dataset (a resumed run) gives the same items, in any order of asking.
    again = CropDataset(cache, ix, crop=1024, speaker_index=speakers, seed=3)
    for m in (2 * n + 1, 5, n + 3, 0):
        assert torch.equal(again[m][0], ds[m][0]) and again[m][1] == ds[m][1]
    assert utterances(CropDataset(cache, ix, 1024, speakers, seed=4), 0) != passes[0]
    # Speakers mix: batches of 4 in the first pass hold more than one speaker on average.
    spk = [cache.utterances[u].speaker for u in passes[0]]
    assert sum(len(set(spk[i : i + 4])) for i in range(0, n - 3, 4)) > (n // 4)


def test_build_speed(tmp_path, make_wav, capsys):
    """Not a benchmark gate: records decode+resample+trim throughput for the report."""
    import time

    root = tmp_path / "speed"
    for s in range(4):
        for u in range(5):
            make_wav(f"speed/spk{s}/u{u}.wav", seconds=1.0, sr=48000, kind="noise", seed=s * 10 + u)
    start = time.perf_counter()
    cache = build_cache(root, tmp_path / "c", progress=False)
    rate = cache.total_seconds / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\ncache build: {cache.total_seconds:.0f} s of 48 kHz audio at {rate:.0f}x real time")
    assert rate > 1


def test_duration_sampling_visits_long_clips_in_proportion():
    from types import SimpleNamespace

    lengths = [48000, 48000, 50000, 47000, 200000, 10]  # four 3 s clips, one 12.5 s clip, one blip
    cache = SimpleNamespace(utterances=[SimpleNamespace(length=n) for n in lengths])
    assert sampling_indices(cache, [5, 0, 4]) == [5, 0, 4]  # "utterance": as given
    visits = sampling_indices(cache, range(6), "duration")
    assert [visits.count(i) for i in range(6)] == [1, 1, 1, 1, 4, 1]  # every clip at least once
    assert sampling_indices(cache, [], "duration") == []
    with pytest.raises(ValueError, match="unknown sampling"):
        sampling_indices(cache, [0], "length")


def test_two_builds_of_one_key_race_without_failing(vctk080_tree, tmp_path, monkeypatch):
    """Two commands started on a cold cache both build it; the one that finishes second keeps the copy
    the first installed instead of failing on the rename."""
    import shutil

    first = load_or_build_cache(vctk080_tree, tmp_path / "c", progress=False)
    final = first.path
    other = tmp_path / "other-process-copy"
    shutil.move(str(final), other)  # cold again; `other` is what the other process will install
    real_rename = os.rename

    def racing_rename(src, dst):
        if str(dst) == str(final) and ".tmp-" in str(src):
            shutil.copytree(other, final)  # the other process got there first
        return real_rename(src, dst)

    monkeypatch.setattr(cache_mod.os, "rename", racing_rename)
    again = load_or_build_cache(vctk080_tree, tmp_path / "c", progress=False)
    assert again.path == final and len(again) == len(first)
    np.testing.assert_array_equal(again.audio(2), first.audio(2))
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp-")]
