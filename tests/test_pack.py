"""vqconvert.data.pack: corpora as Ogg Opus fitted to a byte budget, ids and split kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from conftest import write_tiny_corpus

from vqconvert.audio import load_audio
from vqconvert.data.corpus import scan_corpus, split_utterances
from vqconvert.data.pack import MANIFEST, pack_corpora, parse_size
from vqconvert.errors import VQConvertError


def _quiet(_msg: str) -> None:
    pass


def test_whole_roots_go_in_completely_and_the_rest_round_robin_fits_the_budget(tmp_path, vctk080_tree):
    synth = write_tiny_corpus(tmp_path / "synth", per_speaker=6, seconds=0.5)
    whole = pack_corpora([vctk080_tree], tmp_path / "probe", budget=10**9, log=_quiet)
    # room for the VCTK clips and about two synthetic clips per speaker
    budget = whole.bytes + 7 * (whole.bytes // whole.clips)
    r = pack_corpora([synth, vctk080_tree], tmp_path / "pack", budget, whole=[vctk080_tree], log=_quiet)
    assert r.bytes <= budget
    real = scan_corpus(tmp_path / "pack" / "vctk080")
    assert {u.key for u in real} == {u.key for u in scan_corpus(vctk080_tree)}
    assert {u.key: u.text for u in real} == {u.key: u.text for u in scan_corpus(vctk080_tree)}
    packed = scan_corpus(tmp_path / "pack" / "synth")
    per_speaker = {s: sorted(u.utt_id for u in packed if u.speaker == s) for s in ("spk-a", "spk-b", "spk-c")}
    counts = sorted(len(v) for v in per_speaker.values())
    assert counts[0] >= 1 and counts[-1] - counts[0] <= 1  # every voice gets a share, in id order
    for spk, ids in per_speaker.items():
        assert ids == [f"{spk}_{i:02d}" for i in range(len(ids))]
    assert r.clips == len(real) + len(packed) and r.left_out == 18 - len(packed)
    manifest = json.loads((tmp_path / "pack" / MANIFEST).read_text())
    assert manifest["roots"]["vctk080"]["whole"] and manifest["clips"] == r.clips
    assert not (tmp_path / "pack.partial").exists()


def test_packed_audio_is_16k_opus_close_to_the_source(tmp_path):
    synth = write_tiny_corpus(tmp_path / "synth", per_speaker=1, seconds=1.0)
    pack_corpora([synth], tmp_path / "pack", budget=10**9, log=_quiet)
    ogg = tmp_path / "pack" / "synth" / "spk-a" / "spk-a_00.ogg"
    assert ogg.read_bytes()[:4] == b"OggS"
    src, got = load_audio(synth / "spk-a" / "spk-a_00.wav"), load_audio(ogg)
    assert abs(got.size - src.size) <= 0.05 * 16000  # the trimmer keeps the clip (no silence to cut)
    n = min(src.size, got.size)
    snr = 10 * np.log10(np.sum(src[:n] ** 2) / np.sum((src[:n] - got[:n]) ** 2))
    assert snr > 5.0
    assert ogg.stat().st_size < 0.25 * (synth / "spk-a" / "spk-a_00.wav").stat().st_size


def test_split_of_the_pack_matches_the_full_corpus(tmp_path):
    synth = write_tiny_corpus(tmp_path / "synth", per_speaker=8, seconds=0.3)
    pack_corpora([synth], tmp_path / "pack", budget=10**9, log=_quiet)
    full = split_utterances(scan_corpus(synth), 0.2, holdout=["spk-a_01"])
    packed = split_utterances(scan_corpus(tmp_path / "pack" / "synth"), 0.2, holdout=["spk-a_01"])
    assert [[u.key for u in part] for part in full] == [[u.key for u in part] for part in packed]


def test_budget_too_small_for_whole_roots_fails_and_leaves_nothing(tmp_path, vctk080_tree):
    with pytest.raises(VQConvertError, match="budget"):
        pack_corpora([vctk080_tree], tmp_path / "pack", budget=1000, whole=[vctk080_tree], log=_quiet)
    assert not (tmp_path / "pack").exists() and not (tmp_path / "pack.partial").exists()


def test_existing_pack_needs_force_and_whole_must_be_a_given_root(tmp_path, generic_tree, vctk080_tree):
    out = tmp_path / "pack"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(VQConvertError, match="--force"):
        pack_corpora([generic_tree], out, budget=10**9, log=_quiet)
    assert (out / "keep.txt").exists()
    with pytest.raises(VQConvertError, match="not one of"):
        pack_corpora([generic_tree], tmp_path / "p2", budget=10**9, whole=[vctk080_tree], log=_quiet)
    pack_corpora([generic_tree], out, budget=10**9, force=True, log=_quiet)
    assert not (out / "keep.txt").exists() and (out / "generic" / "bob").is_dir()


@pytest.mark.parametrize(
    ("text", "size"),
    [("28MB", 28 * 2**20), ("28MiB", 28 * 2**20), ("1.5G", 3 * 2**29), ("123456", 123456), ("4k", 4096)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_parse_size_rejects_nonsense():
    with pytest.raises(typer.BadParameter):
        parse_size("lots")


def test_command_line_errors_are_one_line_and_exit_1(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vqconvert.data.pack",
            str(tmp_path / "nothing"),
            "--out",
            str(tmp_path / "p"),
            "--budget",
            "1MB",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
    assert not Path(tmp_path / "p").exists()
