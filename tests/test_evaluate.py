"""`vqconvert evaluate`: the metric functions on synthetic signals, the selection of utterances, the judges'
wrappers, and the command on the tiny checkpoint (JSON with every key, the missing-extra message)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from vqconvert import evaluation as ev
from vqconvert.cli import app
from vqconvert.data.corpus import Utterance

SR = 16000
runner = CliRunner()


def voiced(seconds: float = 1.5, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """Speech-like: harmonics with a gliding pitch, syllable-rate amplitude modulation, a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    sig = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * sig * env / 2 + noise).astype(np.float32)


# -- metrics ------------------------------------------------------------------------------------------


def test_mcd_zero_for_identical_and_positive_for_different():
    x = voiced()
    assert ev.mcd(x, x) == 0.0
    other = voiced(f0=260.0, seed=1)
    noise = np.random.default_rng(2).standard_normal(x.size).astype(np.float32) * 0.1
    d_other, d_noise = ev.mcd(x, other), ev.mcd(x, noise)
    assert d_other > 0.5 and d_noise > d_other
    shifted = np.concatenate([np.zeros(160, np.float32), x[:-160]])  # 10 ms late: DTW absorbs the delay
    assert 0.0 < ev.mcd(x, shifted) < d_other / 2
    quiet = 0.1 * x  # c0 (energy) is left out: a level change alone costs nothing
    assert ev.mcd(x, quiet) < 0.05


def test_mel_filterbank_is_librosas():
    librosa = pytest.importorskip("librosa")
    for sr, n_fft, n_mels in ((16000, 512, 80), (16000, 400, 40), (22050, 1024, 64)):
        ours = ev.mel_filterbank(sr, n_fft, n_mels)
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
        np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_dtw_path():
    a = np.array([0.0, 1.0, 2.0, 3.0])
    cost = np.abs(a[:, None] - a[None, :])
    assert ev.dtw_path(cost).tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    b = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 3.0])  # a stretched: rows repeat to follow it
    path = ev.dtw_path(np.abs(a[:, None] - b[None, :]))
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [3, 5]
    assert np.all(np.diff(path, axis=0) >= 0) and np.all(np.abs(a[path[:, 0]] - b[path[:, 1]]) == 0)


def test_stoi_identical_is_one_and_noise_is_low():
    pytest.importorskip("pystoi")
    from vqconvert.evaluation.judges import stoi

    x = voiced(2.0)
    assert stoi(x, x) > 0.99
    noisy = x + np.random.default_rng(0).standard_normal(x.size).astype(np.float32) * 0.3
    assert stoi(x, noisy) < 0.8
    assert stoi(x[:2000], x[:2000]) is None  # too short to measure


def test_pesq_identical_is_high():
    pytest.importorskip("pesq")
    from vqconvert.evaluation.judges import pesq_wb

    x = voiced(2.0)
    assert pesq_wb(x, x) > 4.0
    assert pesq_wb(x[:1000], x[:1000]) is None


def test_bitrate_entropy_perplexity():
    from vqconvert.codes import bitrate
    from vqconvert.stats import entropy_bits, entropy_bits_tensor, perplexity, perplexity_tensor

    assert bitrate(16000, 64, 512) == 2250.0
    assert bitrate(16000, 64, 32) == 1250.0
    assert entropy_bits([5, 5, 5, 5]) == pytest.approx(2.0)
    assert perplexity([5, 5, 5, 5]) == pytest.approx(4.0)
    assert perplexity([7, 0, 0]) == 1.0 and entropy_bits([]) == 0.0
    assert perplexity([1, 3]) == pytest.approx(2 ** (-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))))
    # The numpy helpers are the torch definition (the one the quantizer uses in-graph) in float64.
    counts = np.random.default_rng(0).integers(0, 5, 40) * (np.arange(40) % 3 > 0)
    assert entropy_bits(counts) == float(entropy_bits_tensor(torch.as_tensor(counts, dtype=torch.float64)))
    assert float(perplexity_tensor(torch.tensor(counts, dtype=torch.float32))) == pytest.approx(perplexity(counts))
    assert str(entropy_bits_tensor(torch.zeros(3)).item()) == "0.0"  # not -0.0

    codes = [torch.arange(16), np.arange(16)]  # 32 frames, each of codes 0..15 twice: uniform over 16 of 32
    s = ev.codebook_stats(codes, 32, 16000, 64)
    assert (s["K"], s["frames"], s["used"], s["used_fraction"]) == (32, 32, 16, 0.5)
    assert s["perplexity"] == pytest.approx(16.0) and s["entropy_bits"] == pytest.approx(4.0)
    assert s["bitrate_bps"] == 1250.0 and s["entropy_bitrate_bps"] == pytest.approx(250.0 * 4)
    one = ev.codebook_stats([torch.zeros(10, dtype=torch.long)], 32, 16000, 64)
    assert one["perplexity"] == 1.0 and one["entropy_bitrate_bps"] == 0.0 and one["used"] == 1


def test_speaker_gain_is_the_mean_over_other_speakers_minus_own():
    from vqconvert.stats import speaker_gain

    assert speaker_gain(2.0, [2.5]) == 0.5  # validation: one other speaker
    assert speaker_gain(2.0, [2.5, 3.5, 2.0]) == pytest.approx(np.mean([0.5, 1.5, 0.0]))  # evaluation


def test_bits_per_sample_matches_the_training_loss(tiny_checkpoint):
    from vqconvert.checkpoint import load_model

    loaded = load_model(tiny_checkpoint)
    audio = torch.from_numpy(voiced(0.128))[None]  # 2048 samples = 32 frames
    codes = loaded.model.encode(audio)[0]
    bits = ev.bits_per_sample(loaded.model, codes, 1, audio[0].numpy())
    with torch.no_grad():
        ref = loaded.model(audio, torch.tensor([1])).bits
    assert bits == pytest.approx(ref, rel=1e-4)
    assert 0.0 < bits < 9.0


# -- data ---------------------------------------------------------------------------------------------


def test_select_utterances_round_robin_and_prefers_whole_transcribed(tmp_path):
    utts = []
    for spk in ("a", "b", "c"):
        for i, secs in enumerate((3.0, 1.0, 1.0)):
            p = tmp_path / spk / f"{spk}_{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, np.zeros(int(secs * SR), np.float32), SR)
            utts.append(Utterance(spk, f"{spk}_{i}", p, "some text" if i != 2 else None))
    pick = ev.select_utterances(utts, 3, 2.0)
    assert sorted(u.speaker for u in pick) == ["a", "b", "c"]  # one per speaker first
    assert all(u.utt_id.endswith("_1") for u in pick)  # the short one with a transcript
    assert ev.select_utterances(utts, 3, 2.0) == pick  # deterministic
    assert len(ev.select_utterances(utts, 5, 2.0)) == 5
    assert len(ev.select_utterances(utts, 0, 2.0)) == 9
    assert {u.speaker for u in ev.select_utterances(utts, 4, 2.0, sources=["b"])} == {"b"}


def test_prepare_audio_trims_and_crops(tmp_path):
    p = tmp_path / "x.wav"
    sf.write(p, np.concatenate([np.zeros(8000, np.float32), voiced(1.0)]), SR)
    audio, cropped, secs = ev.prepare_audio(p, SR, 0.5)
    assert cropped and len(audio) == 8000 - 8000 % 64 and secs < 1.2
    audio, cropped, _ = ev.prepare_audio(p, SR, 3.0)
    assert not cropped and len(audio) % 64 == 0


def test_default_targets_spread_and_deterministic():
    speakers = [f"s{i}" for i in range(10)]
    assert ev.default_targets(speakers, speakers, 3) == ["s1", "s5", "s8"]
    assert ev.default_targets(speakers, ["s2", "s7"], 3) == ["s2", "s7"]
    assert ev.default_targets(speakers, [], 2) == ["s2", "s7"]


# -- judges -------------------------------------------------------------------------------------------


def test_text_normalisation_and_wer():
    pytest.importorskip("jiwer")
    from vqconvert.evaluation.judges import normalize_text, word_error_rate

    assert normalize_text("Don't stop-me, NOW!") == "don't stop me now"
    assert word_error_rate(["Hello, world!"], ["hello world"])["wer"] == 0.0
    r = word_error_rate(["a b c d", "e f", ""], ["a x c", "e f g", "ignored"])
    assert (r["errors"], r["words"], r["n"]) == (3, 6, 2) and r["wer"] == 0.5
    assert word_error_rate([""], ["x"])["wer"] is None


def test_pocketsphinx_transcribes_offline():
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("jiwer")
    from vqconvert.evaluation.judges import Transcriber

    asr = Transcriber()  # no download: the en-us model ships in the wheel
    for clip in (np.zeros(SR // 2, np.float32), voiced(1.0)):  # (it hears "dog" in digital silence)
        text = asr.transcribe(clip)
        assert isinstance(text, str) and text == text.lower()
    assert asr.timeouts == 0


def test_pocketsphinx_transcript_depends_on_the_clip_alone():
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("jiwer")
    from vqconvert.evaluation.dsp import white_noise
    from vqconvert.evaluation.judges import Transcriber

    speech, sr = sf.read(Path(__file__).parents[1] / "data" / "samples" / "demo.wav", dtype="float32")
    quiet = 0.05 * speech  # quiet speech is where the adapted cepstral mean changed the words
    asr = Transcriber()
    first = asr.transcribe(quiet)
    for clip in (speech, white_noise(1.0, sr, rms=0.3), speech):
        asr.transcribe(clip)
    assert asr.transcribe(quiet) == first


def test_pocketsphinx_stops_at_its_time_limit():
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("jiwer")
    from vqconvert.evaluation.judges import Transcriber

    asr = Transcriber(max_realtime=-1.0)  # limit 2 s - 4 s < 0: stops after the first half-second piece
    assert isinstance(asr.transcribe(voiced(4.0)), str)
    assert asr.timeouts == 1
    assert isinstance(asr.transcribe(voiced(0.4)), str) and asr.timeouts == 1  # one piece: nothing left to skip


def test_noise_generators():
    from vqconvert.evaluation.dsp import pink_noise, white_noise

    w, p = white_noise(1.0, seed=3), pink_noise(1.0, seed=3)
    assert w.shape == p.shape == (SR,) and abs(float(np.std(p)) - 0.05) < 1e-3
    spec = np.abs(np.fft.rfft(p)) ** 2
    f = np.fft.rfftfreq(p.size, 1 / SR)
    low, high = spec[(f > 50) & (f < 200)].mean(), spec[(f > 3000) & (f < 6000)].mean()
    assert low > 10 * high  # 1/f: far more power at low frequencies
    spec_w = np.abs(np.fft.rfft(w)) ** 2
    assert 0.5 < spec_w[(f > 50) & (f < 200)].mean() / spec_w[(f > 3000) & (f < 6000)].mean() < 2


def test_speaker_judge_mel_matches_resemblyzer_and_identifies():
    pytest.importorskip("resemblyzer")
    from resemblyzer import audio as rz_audio

    from vqconvert.evaluation.dsp import mel_spectrogram
    from vqconvert.evaluation.judges import SpeakerJudge

    x = voiced(1.0)
    np.testing.assert_allclose(mel_spectrogram(x), rz_audio.wav_to_mel_spectrogram(x), rtol=1e-4, atol=1e-6)
    judge = SpeakerJudge()
    low = [judge.embed(voiced(1.0, 110.0, s)) for s in range(2)]
    high = [judge.embed(voiced(1.0, 300.0, s)) for s in range(2)]
    assert low[0].shape == (256,) and abs(float(np.linalg.norm(low[0])) - 1) < 1e-5
    judge.set_references({"low": low, "high": high})
    assert judge.chance == 0.5
    name, sim = judge.identify(judge.embed(voiced(1.0, 112.0, 9)))
    assert name == "low" and -1.0 <= sim <= 1.0
    answers = ev.noise_answers(judge, 1.0)
    assert set(answers) == {"white", "pink"} and answers["white"]["speaker"] in ("low", "high")


# -- the command --------------------------------------------------------------------------------------


def _eval_corpus(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """The tiny model's corpus plus one short transcribed utterance per speaker (so WER is measured)."""
    src = tiny_checkpoint.parent.parent / "corpus"
    root = tmp_path / "corpus"
    shutil.copytree(src, root)
    for i, spk in enumerate(sorted(p.name for p in root.iterdir())):
        sf.write(root / spk / f"{spk}_short.wav", voiced(0.2, 120.0 + 40 * i, i), SR)
        (root / spk / f"{spk}_short.txt").write_text("Hello, world.\n")
    return root


def _run(args: list) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _evaluate_all(checkpoint: Path, *args, limit: int = 1) -> object:
    """`vqconvert evaluate -m CHECKPOINT ARGS` over every utterance (--split all): `limit` of them, each
    cut to 0.25 s, on the CPU."""
    return _run(
        [
            "evaluate",
            "-m",
            checkpoint,
            *args,
            "--split",
            "all",
            "--limit",
            limit,
            "--max-seconds",
            "0.25",
            "--device",
            "cpu",
        ]
    )


def _have_all_judges() -> bool:
    from vqconvert.evaluation.judges import MissingJudge, import_judge

    try:
        for name in ev.OPTIONAL_JUDGES:
            import_judge(name)
    except MissingJudge:
        return False
    return True


def test_evaluate_command_json_has_every_key(tiny_checkpoint, tmp_path):
    corpus = _eval_corpus(tiny_checkpoint, tmp_path)
    out = tmp_path / "out"
    r = _evaluate_all(tiny_checkpoint, corpus, "--json", "--out-dir", out, "--seed", "1", limit=2)
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(ev.RESULT_KEYS) <= set(res)
    assert {"path", "fingerprint", "step", "preset", "codebook_size", "speakers"} <= set(res["model"])
    assert res["data"]["evaluated"] == 2 and res["data"]["split"] == "all"
    rec = res["reconstruction"]
    for k in (
        "nll_bits_per_sample",
        "stoi",
        "mcd_db",
        "pesq_wb",
        "speaker_id",
        "similarity_to_source",
        "by_voice",
    ):
        assert k in rec
    assert 0 < rec["nll_bits_per_sample"] < 10 and rec["mcd_db"] > 0 and rec["nll_n"] == 2
    cb = res["codebook"]
    for k in ("K", "used", "perplexity", "bitrate_bps", "entropy_bitrate_bps", "frames"):
        assert k in cb
    assert cb["K"] == 32 and cb["bitrate_bps"] == 1250.0 and 1 <= cb["perplexity"] <= 32
    tr = res["transfer"]
    assert tr["targets"] == ["spk-a", "spk-b", "spk-c"] and tr["pairs"] == 4 and tr["skipped_same_speaker"] == 2
    for k in (
        "speaker_id",
        "identified_as_source",
        "similarity_to_target",
        "similarity_to_source",
        "by_target",
    ):
        assert k in tr
    it = res["intelligibility"]
    for k in (
        "n_utterances",
        "wer_source",
        "wer_reconstructed",
        "wer_converted",
        "by_source_voice",
        "by_target_voice",
    ):
        assert k in it
    sp = res["judges"]["speaker"]
    for k in ("n_speakers", "chance", "noise_answer", "real_accuracy", "available"):
        assert k in sp
    utt = res["utterances"][0]
    for k in ("key", "speaker", "nll_bits_per_sample", "mcd_db", "stoi", "conversions", "hyp_source"):
        assert k in utt
    files = sorted(p.name for p in out.rglob("*.wav"))
    assert len(files) == 2 * 2 + 4 and (out / "results.json").is_file()
    if _have_all_judges():
        assert sp["n_speakers"] == 3 and sp["chance"] == pytest.approx(1 / 3)
        assert set(sp["noise_answer"]) == {"white", "pink"}
        acc = tr["speaker_id"]
        assert acc["n"] == 4 and acc["chance"] == pytest.approx(1 / 3) and set(acc["noise_answer"]) == {"white", "pink"}
        assert -1 <= tr["similarity_to_target"] <= 1
        assert it["n_utterances"] == 2 and it["wer_source"] is not None  # the short transcribed clips
        assert set(it["by_target_voice"]) == {"spk-a", "spk-b", "spk-c"}
        assert rec["stoi"] is None and any("STOI" in n for n in res["notes"])  # 0.2 s: too short for STOI


def test_evaluate_table_and_empty_val_split(tiny_checkpoint, tmp_path):
    r = _run(["evaluate", "-m", tiny_checkpoint, tiny_checkpoint.parent.parent / "corpus", "--device", "cpu"])
    assert r.exit_code == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "validation split" in lines[0] and "--split all" in lines[0]
    r = _evaluate_all(tiny_checkpoint, "--skip", "speaker,asr", "--skip", "pesq", "-q")  # DATA from train_config
    assert r.exit_code == 0, r.stderr
    for title in ("Reconstruction", "Codebook", "Voice transfer", "Intelligibility"):
        assert title in r.stdout
    r = _run(["evaluate", "-m", tiny_checkpoint, "--split", "all", "--targets", "nobody", "--device", "cpu"])
    assert r.exit_code == 1 and "unknown speaker 'nobody'" in r.stderr
    r = _run(["evaluate", "-m", tiny_checkpoint, "--split", "all", "--backend", "gpu", "--device", "cpu"])
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        "error: unknown --backend 'gpu': choose from auto, c, torch, cuda"
    ]


def test_missing_extra_is_one_line(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # `import resemblyzer` now fails
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    corpus = tiny_checkpoint.parent.parent / "corpus"
    r = _evaluate_all(tiny_checkpoint, corpus, "--require-all")
    assert r.exit_code == 1 and r.stdout == ""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: missing eval packages")
    assert "resemblyzer" in lines[0] and "pocketsphinx" in lines[0] and "pip install 'vqconvert[eval]'" in lines[0]

    r = _evaluate_all(tiny_checkpoint, corpus, "--json", "--skip", "pesq")
    assert r.exit_code == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "missing eval packages" in ln]
    assert len(warn) == 1 and "resemblyzer (speaker)" in warn[0] and "pip install 'vqconvert[eval]'" in warn[0]
    res = json.loads(r.stdout)
    assert res["judges"]["speaker"]["available"] is False and res["transfer"]["speaker_id"] is None
    assert res["judges"]["asr"]["note"] == "missing package pocketsphinx"
    assert res["intelligibility"]["wer_source"] is None and res["reconstruction"]["mcd_db"] is not None


def test_missing_dependency_of_a_judge_is_named(monkeypatch):
    from vqconvert.evaluation.judges import MissingJudge, import_judge

    monkeypatch.setitem(sys.modules, "pystoi", None)
    with pytest.raises(MissingJudge, match=r"package pystoi: pip install 'vqconvert\[eval\]'"):
        import_judge("stoi")


def test_judge_data_fixes_the_speaker_judges_candidates(tiny_checkpoint, tmp_path):
    """Without --judge-data the judge also draws on the model's training corpora (spk-c too); with it,
    only on DATA and the corpora named, so two models can be compared with the same candidates."""
    src = tiny_checkpoint.parent.parent / "corpus"
    data = tmp_path / "ab"
    for spk in ("spk-a", "spk-b"):
        shutil.copytree(src / spk, data / spk)
    empty = tmp_path / "none"
    empty.mkdir()
    quick = ("--skip", "nll,asr,pesq,stoi,mcd", "--targets", "spk-a,spk-b", "--json", "-q")
    if not _have_all_judges():
        pytest.skip("the speaker judge (eval extra) is not installed")
    r = _evaluate_all(tiny_checkpoint, data, *quick)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["judges"]["speaker"]["n_speakers"] == 3
    r = _evaluate_all(tiny_checkpoint, data, "--judge-data", empty, *quick)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["judges"]["speaker"]["n_speakers"] == 2
    r = _evaluate_all(tiny_checkpoint, data, "--judge-data", empty, "--judge-data", src, *quick)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["judges"]["speaker"]["n_speakers"] == 3
    missing = tmp_path / "missing"
    r = _evaluate_all(tiny_checkpoint, data, "--judge-data", missing, *quick)
    assert r.exit_code == 1 and r.stderr.strip().splitlines() == [f"error: --judge-data {missing}: not a directory"]
