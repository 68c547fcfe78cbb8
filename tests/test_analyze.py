"""Phoneme timings from the synthesizers, the code-phoneme and speaker-independence measures, and
`vqconvert analyze` on a small synthetic corpus with the `tiny` model."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import wave

import numpy as np
import pytest
from typer.testing import CliRunner

from vqconvert.analysis import (
    LabelledUtterance,
    code_phone_accuracy,
    collapse_runs,
    edit_distance,
    round_robin,
    shared_sentences,
    speaker_independence,
)
from vqconvert.cli import app
from vqconvert.data import synth
from vqconvert.data.synth.phonemes import SILENCE, Segment, _espeak, frame_labels, phoneme_segments

runner = CliRunner()
SENTENCE = "The quick brown fox jumps over the lazy dog."


def needs(engine: str):
    return pytest.mark.skipif(shutil.which(engine) is None, reason=f"{engine} not installed")


def _levenshtein(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_edit_distance_matches_the_textbook_one():
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = rng.integers(0, 4, rng.integers(0, 12)).tolist()
        b = rng.integers(0, 4, rng.integers(0, 12)).tolist()
        assert edit_distance(a, b) == _levenshtein(a, b), (a, b)
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance(list(b"kitten"), list(b"sitting")) == 3
    assert collapse_runs(np.array([5, 5, 7, 7, 7, 5])).tolist() == [5, 7, 5]


def test_frame_labels_take_the_phone_at_each_frame_centre():
    segs = [Segment("pau", 0.0, 0.011), Segment("a", 0.011, 0.021), Segment("b", 0.021, 0.031)]
    # frames of 4 ms: centres 2, 6, 10, 14, ... ms
    assert frame_labels(segs, 9, 0.004) == ["pau", "pau", "pau", "a", "a", "b", "b", "b", None]


def _utts(codes_for_phone, n=20, seed=0):
    rng = np.random.default_rng(seed)
    phones = ["a", "b", "c", "d"]
    out = []
    for i in range(n):
        ph = [phones[k] for k in rng.integers(0, 4, 50)]
        codes = np.array([codes_for_phone(p, rng) for p in ph])
        out.append(LabelledUtterance(f"u{i}", "s", "x", codes, ph))
    return out


def test_code_phone_accuracy_against_chance():
    # each phone has its own two codes: perfect accuracy; chance about 25-30%
    perfect = code_phone_accuracy(_utts(lambda p, rng: 2 * "abcd".index(p) + int(rng.integers(0, 2))))
    assert perfect["accuracy"] == 1.0 and perfect["heldout_accuracy"] == 1.0
    assert perfect["chance_majority"] < 0.35 and perfect["chance_shuffled"] < 0.45
    assert perfect["phones"] == 4 and perfect["codes_used"] == 8
    # codes that ignore the phone: no better than chance held out
    noise = code_phone_accuracy(_utts(lambda p, rng: int(rng.integers(0, 8))))
    assert noise["heldout_accuracy"] < 0.35
    assert noise["accuracy"] >= noise["chance_majority"]  # in-sample mapping is never below the majority


def test_shared_sentences_and_speaker_independence():
    transcripts = {
        "x_0": ("x", "Hello there."),
        "y_0": ("y", "hello  there."),
        "y_1": ("y", "Something else entirely."),
        "z_0": ("z", "Hello there."),
    }
    pairs = shared_sentences(transcripts)
    assert {(p.a, p.b) for p in pairs} == {("x_0", "y_0"), ("x_0", "z_0"), ("y_0", "z_0")}
    assert len(round_robin(pairs, 1)) == 3
    codes = {
        "x_0": np.array([1, 1, 2, 3]),
        "y_0": np.array([1, 2, 2, 3]),
        "y_1": np.array([7, 8, 9, 9]),
        "z_0": np.array([1, 2, 3]),
    }
    lengths = {k: len(v) for k, v in codes.items()}
    si = speaker_independence(pairs, codes.__getitem__, transcripts, lengths)
    # only x_0/y_0 has a reference (y says another sentence); same 1/4 apart, different 4/4
    assert si["pairs"] == 1 and si["same_raw"] == 0.25 and si["diff_raw"] == 1.0
    assert si["same_merged"] == 0.0 and si["same_closer_than_different"] == 1.0


@needs("flite")
def test_flite_segments_cover_the_audio():
    voice = synth.resolve_voice("flite-slt")
    (segs,) = phoneme_segments(voice, [SENTENCE])
    (audio,) = synth.render_to_arrays(voice, [SENTENCE])
    assert segs[0].phone == "pau" and segs[-1].phone == "pau"
    assert abs(segs[-1].end - audio.size / 16000) < 0.01
    assert [s.phone for s in segs[1:4]] == ["dh", "ax", "k"]
    assert all(b.start == a.end for a, b in itertools.pairwise(segs))


@needs("festival")
def test_festival_segments_cover_the_audio():
    voice = synth.resolve_voice("festival-kal")
    segs = phoneme_segments(voice, [SENTENCE, "Yes."])
    audio = synth.render_to_arrays(voice, [SENTENCE, "Yes."])
    assert len(segs) == 2
    for s, a in zip(segs, audio, strict=True):
        assert abs(s[-1].end - a.size / 16000) < 0.06
    assert [x.phone for x in segs[1] if x.phone not in SILENCE] == ["y", "eh", "s"]


@needs("espeak-ng")
def test_espeak_events_are_timed_on_the_command_line_audio(tmp_path):
    voice = synth.resolve_voice("espeak-en-us-m3")
    raw = tmp_path / "lib.raw"
    segs = _espeak(voice.spec, SENTENCE, raw)
    lib = raw.read_bytes()
    wav = tmp_path / "cli.wav"
    subprocess.run(["espeak-ng", "-v", voice.spec, "-w", str(wav)], input=SENTENCE, text=True, check=True)
    with wave.open(str(wav)) as w:
        rate, cli_audio = w.getframerate(), w.readframes(w.getnframes())
    # the library's audio is the start of the command line's (which adds a final pause)
    assert len(lib) > 0.5 * len(cli_audio) and cli_audio[: len(lib)] == lib
    assert abs(segs[-1].end - len(lib) / 2 / rate) < 1e-6
    phones = [s.phone for s in segs if s.phone not in SILENCE]
    assert phones[:2] == ["D", "@2"] and len(phones) > 25  # espeak-ng 1.51: "the" = D @2
    # a fresh process per utterance: the same timings every time, whatever came before
    again = phoneme_segments(voice, ["Something else first.", SENTENCE])
    assert again[1] == segs


FORTUNES = "\n%\n".join(
    [
        "Every cloud has a silver lining.",
        "Time flies like an arrow.",
        "The early bird catches the worm.",
        "Still waters run deep.",
    ]
)


@needs("flite")
@needs("espeak-ng")
def test_analyze_cli_on_a_small_corpus(tiny_checkpoint, tmp_path):
    fortunes = tmp_path / "fortunes"
    fortunes.mkdir()
    for name in synth.FORTUNE_FILES:
        (fortunes / name).write_text(FORTUNES + "\n")
    corpus = tmp_path / "corpus"
    synth.build_synth_corpus(
        corpus, utterances_per_voice=3, voices=["flite-awb", "espeak-en-us-m3"], progress=False, fortune_dir=fortunes
    )
    out = tmp_path / "rep.json"
    r = runner.invoke(app, ["analyze", str(corpus), "-m", str(tiny_checkpoint), "--per-voice", "3", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    assert "code-phoneme accuracy" in r.stdout and "speaker independence" in r.stdout
    rep = json.loads(out.read_text())
    assert set(rep["phonemes"]) == {"cmu", "espeak"}
    for a in rep["phonemes"].values():
        assert a["utterances"] == 3 and a["frames"] > 100
        assert a["chance_majority"] <= a["accuracy"] <= 1.0
    assert rep["skipped"] == [] and rep["codes_encoded"] == 6
    si = rep["speaker_independence"]
    assert si["pairs"] >= 1 and 0.0 <= si["same_raw"] <= 1.0
    # the report is not overwritten without --force; a directory without corpus.json is refused
    r = runner.invoke(app, ["analyze", str(corpus), "-m", str(tiny_checkpoint), "-o", str(out)])
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = runner.invoke(app, ["analyze", str(tmp_path / "fortunes"), "-m", str(tiny_checkpoint)])
    assert r.exit_code == 1 and r.stderr.count("error:") == 1 and "corpus.json" in r.stderr
    r = runner.invoke(app, ["analyze", str(corpus), "-m", str(tiny_checkpoint), "--voices", "nobody"])
    assert r.exit_code == 1 and r.stderr.count("error:") == 1 and "nobody" in r.stderr
