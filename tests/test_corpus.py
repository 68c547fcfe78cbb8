"""vqconvert.data.corpus: layouts, VCTK quirks, speaker info, splits; plus the real vctk-mini clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from vqconvert.audio import audio_info, load_audio
from vqconvert.data.corpus import (
    Utterance,
    detect_layout,
    read_speaker_info,
    scan_corpora,
    scan_corpus,
    speaker_table,
    split_utterances,
)
from vqconvert.errors import DataError

VCTK_MINI = Path(__file__).parents[1].parent / "shared" / "vctk-mini"


def test_detect_layouts(vctk080_tree, vctk092_tree, generic_tree, tmp_path):
    assert detect_layout(vctk080_tree) == "vctk080"
    assert detect_layout(vctk092_tree) == "vctk092"
    assert detect_layout(generic_tree) == "generic"
    with pytest.raises(DataError, match="does not exist"):
        detect_layout(tmp_path / "missing")
    (tmp_path / "empty" / "spk").mkdir(parents=True)
    (tmp_path / "empty" / "spk" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no audio"):
        scan_corpus(tmp_path / "empty")


def test_vctk080_quirks(vctk080_tree):
    utts = scan_corpus(vctk080_tree)
    assert speaker_table(utts) == ["p225", "p280", "p315", "p376"]
    assert len(utts) == 10
    assert all(u.path.suffix == ".wav" for u in utts)  # p376_295.raw skipped
    by_id = {u.utt_id: u for u in utts}
    assert by_id["p225_001"].text == "Sentence 1 of p225."
    assert by_id["p315_002"].text is None
    assert by_id["p225_001"].path == vctk080_tree / "wav48" / "p225" / "p225_001.wav"
    assert utts == sorted(utts, key=lambda u: (u.speaker, u.utt_id))
    info = read_speaker_info(vctk080_tree)
    assert set(info) == {"p225", "p315", "p376"}  # p280 is still scanned
    assert info["p225"] == {
        "age": 23,
        "gender": "F",
        "accent": "English",
        "region": "Southern England",
        "comment": None,
    }
    assert info["p376"]["region"] is None


def test_vctk092_mics(vctk092_tree):
    utts = scan_corpus(vctk092_tree)
    assert len(utts) == 9 and all(u.path.stem.endswith("_mic1") for u in utts)
    assert [u.utt_id for u in utts[:3]] == ["p225_001", "p225_002", "p225_003"]
    assert utts[0].text == "Sentence 1 of p225." and utts[-1].text is None
    mic2 = scan_corpus(vctk092_tree, mic="mic2")
    assert speaker_table(mic2) == ["p225", "p315"] and len(mic2) == 6
    with pytest.raises(DataError, match="microphone"):
        scan_corpus(vctk092_tree, mic="mic3")
    info = read_speaker_info(vctk092_tree)
    assert info["p280"]["comment"] == "mic2 files unavailable" and info["p280"]["accent"] == "France"


def test_generic(generic_tree):
    utts = scan_corpus(generic_tree)
    assert speaker_table(utts) == ["alice", "bob", "carol"] and len(utts) == 9
    by_id = {u.utt_id: u for u in utts}
    assert by_id["bob_0"].text == "hello from bob" and by_id["bob_1"].text is None
    assert by_id["carol_2"].path.suffix == ".flac"
    with pytest.raises(DataError, match="layout"):
        scan_corpus(generic_tree, layout="nonsense")


def test_scan_corpora_merges_speakers(vctk080_tree, vctk092_tree, generic_tree):
    utts = scan_corpora([vctk092_tree, generic_tree])
    assert len(utts) == 18 and len(speaker_table(utts)) == 6
    merged = scan_corpora([vctk080_tree, vctk092_tree])  # same ids: first root wins
    assert len(merged) == 10 and len({u.key for u in merged}) == 10
    assert all("wav48" in u.path.parts for u in merged)


def _fake(n_speakers: int, n_utts: int) -> list[Utterance]:
    return [
        Utterance(f"s{s}", f"s{s}_{u:03d}", Path(f"/x/s{s}_{u}.wav")) for s in range(n_speakers) for u in range(n_utts)
    ]


def test_split_deterministic_and_complete():
    utts = _fake(5, 40)
    train, val = split_utterances(utts, val_fraction=0.1)
    assert (train, val) == split_utterances(list(reversed(utts)), val_fraction=0.1)
    assert sorted(train + val, key=lambda u: u.key) == sorted(utts, key=lambda u: u.key)
    assert not {u.key for u in train} & {u.key for u in val}
    assert 5 <= len(val) <= 40
    assert {u.speaker for u in val} == {u.speaker for u in train} == {f"s{s}" for s in range(5)}


def test_split_holdout_and_small_speakers():
    utts = _fake(3, 10) + [Utterance("solo", "solo_001", Path("/x/solo.wav"))]
    train, val = split_utterances(utts, val_fraction=0.05, holdout=["s0_003", "s1_00*"])
    val_ids = {u.utt_id for u in val}
    assert "s0_003" in val_ids and {f"s1_00{i}" for i in range(10)} <= val_ids
    assert "solo_001" in {u.utt_id for u in train}
    assert all(any(u.speaker == s for u in train) for s in ("s0", "s2"))
    assert sum(u.speaker == "s2" for u in val) >= 1  # min_val_per_speaker
    train0, val0 = split_utterances(utts, val_fraction=0.0)
    assert val0 == [] and len(train0) == len(utts)


def test_speaker_table_order():
    utts = [Utterance(s, f"{s}_1", Path("/x")) for s in ("p9", "p10", "p1", "p9")]
    assert speaker_table(utts) == ["p1", "p10", "p9"]


@pytest.mark.skipif(not VCTK_MINI.is_dir(), reason="shared/vctk-mini not present")
def test_real_vctk_mini():
    assert detect_layout(VCTK_MINI) == "vctk080"
    utts = scan_corpus(VCTK_MINI)
    assert len(utts) == 102 and len(speaker_table(utts)) == 37
    assert all(u.text is None for u in utts)
    rates = {u.utt_id: audio_info(u.path)["sample_rate"] for u in utts}
    for rate in (48000, 16000):
        utt = next(u for u in utts if rates[u.utt_id] == rate)
        x = load_audio(utt.path)
        seconds = audio_info(utt.path)["duration"]
        assert abs(x.shape[0] - seconds * 16000) <= 2
        assert 0.5 < x.shape[0] / 16000 < 20 and 0.01 < abs(x).max() <= 1.0
