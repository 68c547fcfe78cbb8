"""bench/real_speech.py: transcript parsing, the clip list, and a short run on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import bench_module

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "real_speech.py"
DATA = Path("/usr/share/pocketsphinx/test/data")


rs = bench_module("real_speech")


def test_parse_transcription_both_formats(tmp_path: Path) -> None:
    cards = tmp_path / "cards.transcription"
    cards.write_text("<s> ten of clubs  </s> (001)\n\n<s> Four QUEEN of clubs, </s> (002)\n")
    assert rs.parse_transcription(cards) == {"001": "ten of clubs", "002": "four queen of clubs"}
    libri = tmp_path / "transcription"
    libri.write_text(
        "<s> he was not an ill-disposed young man </s> (sense_and_sensibility_01_austen_64kb-0880)\n"
        "<s> <sil> don't [NOISE] stop ++UH++ </s> (x_1)\n"
    )
    assert rs.parse_transcription(libri) == {
        "sense_and_sensibility_01_austen_64kb-0880": "he was not an ill disposed young man",
        "x_1": "don't stop",
    }
    bad = tmp_path / "bad.transcription"
    bad.write_text("<s> no id here </s>\n")
    with pytest.raises(ValueError, match="bad.transcription:1"):
        rs.parse_transcription(bad)


def _wav(path: Path, seconds: float = 0.3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * 16000), np.float32), 16000)


def test_list_clips_excludes_tidigits_raw_and_untranscribed(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    for i in ("001", "002"):
        _wav(cards / f"{i}.wav")
    (cards / "003.raw").write_bytes(b"\0" * 64)  # listed and transcribed, but only as .raw
    (cards / "cards.fileids").write_text("001\n002\n003\n004\n")
    (cards / "cards.transcription").write_text("<s> ten of clubs </s> (001)\n<s> five </s> (003)\n")
    libri = tmp_path / "librivox"
    _wav(libri / "a-0870.wav")
    (libri / "fileids").write_text("a-0870\n")
    (libri / "transcription").write_text("<s> he was not </s> (a-0870)\n")
    tidi = tmp_path / "tidigits"  # even with wavs and transcripts it is not free speech: excluded
    _wav(tidi / "man.wav")
    (tidi / "fileids").write_text("man\n")
    (tidi / "transcription").write_text("<s> one two </s> (man)\n")
    (tmp_path / "goforward.raw").write_bytes(b"\0" * 64)
    clips = rs.list_clips(tmp_path)
    assert [c.name for c in clips] == ["cards/001", "librivox/a-0870"]
    assert [c.text for c in clips] == ["ten of clubs", "he was not"]
    assert all("tidigits" not in str(c.path) and c.path.suffix == ".wav" for c in clips)


@pytest.mark.skipif(not DATA.is_dir(), reason="Debian package pocketsphinx-testdata not installed")
def test_real_clip_list() -> None:
    from vqconvert.audio import audio_info, load_audio

    clips = rs.list_clips(DATA)
    assert len(clips) == 10
    assert sum(c.name.startswith("cards/") for c in clips) == 5
    assert sum(c.name.startswith("librivox/") for c in clips) == 5
    assert not any("tidigits" in str(c.path) for c in clips)
    assert clips[0].text == "ten of clubs"
    for c in clips:
        assert audio_info(c.path)["sample_rate"] == 16000
        assert load_audio(c.path, 16000).size > 16000  # over a second each


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VQCONVERT_GEN_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def test_missing_data_dir_exits_1(tmp_path: Path) -> None:
    proc = _run("--data", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "pocketsphinx-testdata" in proc.stderr


@pytest.mark.skipif(not DATA.is_dir(), reason="Debian package pocketsphinx-testdata not installed")
def test_end_to_end_tiny(tiny_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("jiwer")
    pytest.importorskip("pystoi")
    out, js = tmp_path / "wavs", tmp_path / "rows.json"
    proc = _run(
        "--model", str(tiny_checkpoint), "--targets", "spk-b,spk-c", "--clips", "2", "--max-seconds", "0.6",
        "--seed", "0", "--out-dir", str(out), "--json", str(js),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(x.startswith("command: ") and "--max-seconds 0.6" in x for x in lines)
    table = [x for x in lines if x.startswith("| ")]
    assert table[0].startswith("| clip | s | words | closest speaker | src WER | recon WER | recon STOI |")
    assert "->spk-b WER" in table[0] and "->spk-c WER" in table[0]
    assert [x.split(" | ")[0] for x in table[1:]] == ["| cards/001", "| cards/002", "| **all** (corpus WER)",
                                                    "| **mean** of clips"]  # fmt: skip
    data = json.loads(js.read_text())
    assert [r["clip"] for r in data["rows"]] == ["cards/001", "cards/002"]
    for r in data["rows"]:
        assert r["seconds"] == pytest.approx(0.6, abs=1e-3)
        assert r["recon_speaker"] in ("spk-a", "spk-b", "spk-c")
        assert set(r["hyps"]) == {"source", "recon", "spk-b", "spk-c"}
        assert all(0.0 <= r["wer"][k]["wer"] for k in r["hyps"])
    wavs = sorted(p.name for p in (out / "cards_001").iterdir())
    assert "source.wav" in wavs and "to.spk-b.wav" in wavs and "to.spk-c.wav" in wavs
    assert any(w.startswith("recon.") for w in wavs)
    assert sf.info(out / "cards_001" / "to.spk-b.wav").frames == int(0.6 * 16000)


def test_closest_speaker_only_among_candidates(tiny_checkpoint: Path) -> None:
    from vqconvert.checkpoint import load_model

    loaded = load_model(tiny_checkpoint)
    clip = (0.1 * np.sin(np.linspace(0, 400, 8000))).astype(np.float32)
    best, bits = rs.closest_speaker(loaded, [clip], 0.5)
    assert 0 <= best < len(loaded.speakers) and bits > 0
    others = [j for j in range(len(loaded.speakers)) if j != best]
    assert rs.closest_speaker(loaded, [clip], 0.5, others)[0] in others
