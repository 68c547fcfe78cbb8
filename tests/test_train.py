"""Training: resume exactness, NaN guard, SIGKILL safety, DDP with gloo, learning on a toy corpus."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vqconvert.checkpoint import load_checkpoint, load_model
from vqconvert.config import TrainConfig
from vqconvert.errors import VQConvertError
from vqconvert.train import Trainer, TrainingError

ROOT = Path(__file__).resolve().parents[1]


def toy_corpus(root: Path, speakers: int = 3, per_speaker: int = 4) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for s in range(speakers):
        for u in range(per_speaker):
            p = root / f"spk{s}" / f"spk{s}_{u:03d}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            f0 = 150 + 80 * s + 10 * u
            a = 0.4 * np.sign(np.sin(2 * np.pi * f0 * t)) * np.hanning(8000) + 0.01 * rng.standard_normal(8000)
            sf.write(p, a.astype(np.float32), 16000)
    return root


def cfg_for(tmp_path: Path, corpus: Path, **kw) -> TrainConfig:
    base = dict(
        data=(str(corpus),),
        run_dir=str(tmp_path / "run"),
        preset="tiny",
        steps=6,
        batch_size=2,
        crop_seconds=0.064,
        checkpoint_every=2,
        validate_every=0,
        log_every=1,
        warmup_steps=2,
        cache_dir=str(tmp_path / "cache"),
        val_fraction=0.25,
        val_batches=1,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def run_split_equals_full(tmp_path: Path, corpus: Path, opts: dict) -> tuple[TrainConfig, list[dict]]:
    """A 4-step run, and the same stopped at step 2 and resumed: the last losses agree. Returns the
    uninterrupted run's config and log rows."""
    full = cfg_for(tmp_path / "a", corpus, **opts)
    Trainer(full, progress=False).run()
    split = cfg_for(tmp_path / "b", corpus, **opts)
    Trainer(split, progress=False).run(until=2)
    Trainer(split, resume=True, progress=False).run()
    a, b = losses(Path(full.run_dir)), losses(Path(split.run_dir))
    assert a[4] == pytest.approx(b[4], rel=1e-5, abs=1e-6)
    return full, [json.loads(x) for x in (Path(full.run_dir) / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return toy_corpus(tmp_path_factory.mktemp("toy"))


def test_resume_reproduces_uninterrupted_run(tmp_path, corpus):
    full = cfg_for(tmp_path / "a", corpus)
    Trainer(full, progress=False).run()
    split = cfg_for(tmp_path / "b", corpus)
    assert Trainer(split, progress=False).run(until=3) == 3
    assert load_checkpoint(Path(split.run_dir) / "latest.pt")["step"] == 3
    log = Path(split.run_dir) / "log.jsonl"
    with open(log, "a") as f:  # a killed run logged step 4 but never saved it
        f.write(json.dumps({"step": 4, "loss": 99.0}) + "\n")
    Trainer(split, resume=True, progress=False).run()
    a, b = losses(Path(full.run_dir)), losses(Path(split.run_dir))
    for step in (4, 5, 6):
        assert a[step] == pytest.approx(b[step], rel=1e-5, abs=1e-6), step
    steps = [json.loads(x)["step"] for x in log.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # one row per step: the unsaved step 4 was dropped on resume


def test_checkpoint_is_self_describing_and_loads_for_inference(tmp_path, corpus):
    cfg = cfg_for(tmp_path, corpus, steps=2)
    Trainer(cfg, progress=False).run()
    ckpt = load_checkpoint(Path(cfg.run_dir))
    assert ckpt["version"] == 2 and ckpt["step"] == 2 and ckpt["speakers"] == ["spk0", "spk1", "spk2"]
    assert ckpt["model_config"]["preset"] == "tiny" and ckpt["optimizer"] and ckpt["train_config"]["steps"] == 2
    loaded = load_model(cfg.run_dir)
    assert loaded.step == 2 and len(loaded.fingerprint) == 16


def test_nan_loss_stops_without_writing_a_broken_checkpoint(tmp_path, corpus, monkeypatch):
    cfg = cfg_for(tmp_path, corpus, steps=4, lr=1e-3)
    tr = Trainer(cfg, progress=False)
    tr.run(until=2)
    good = (Path(cfg.run_dir) / "latest.pt").read_bytes()
    real = tr.net.forward

    def poisoned(audio, speaker, encoder_input=None, prev_noise=None, true_mel=None):
        out = real(audio, speaker, encoder_input, prev_noise, true_mel)
        out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(tr.net, "forward", poisoned)
    with pytest.raises(TrainingError, match="last good checkpoint"):
        tr.run()
    assert (Path(cfg.run_dir) / "latest.pt").read_bytes() == good


def test_validation_reports_bits_perplexity_and_codes(tmp_path, corpus):
    cfg = cfg_for(tmp_path, corpus, steps=2, validate_every=2)
    tr = Trainer(cfg, progress=False)
    tr.run()
    rows = [json.loads(x) for x in (Path(cfg.run_dir) / "log.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_bits" in r]
    assert val and 0 < val[0]["val_bits"] <= 8.5 and val[0]["val_codes_used"] >= 1
    assert 0 < val[0]["val_marginal_bits"] <= 8.0


def _train_cmd(cfg: TrainConfig) -> list[str]:
    script = (
        "import sys, json; from vqconvert.config import TrainConfig; from vqconvert.train import Trainer;"
        "Trainer(TrainConfig.from_dict(json.loads(sys.argv[1])), resume=True, progress=False).run()"
    )
    return [sys.executable, "-c", script, json.dumps(cfg.to_dict())]


def test_sigkill_at_random_moments_always_leaves_an_intact_checkpoint(tmp_path, corpus):
    cfg = cfg_for(tmp_path, corpus, steps=400, checkpoint_every=1)
    latest = Path(cfg.run_dir) / "latest.pt"
    rnd = random.Random(0)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    steps_seen = [0]
    for _ in range(4):
        proc = subprocess.Popen(_train_cmd(cfg), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        before = latest.stat().st_mtime_ns if latest.exists() else 0
        deadline = time.time() + 60
        while time.time() < deadline and (not latest.exists() or latest.stat().st_mtime_ns == before):
            time.sleep(0.02)  # wait until this process has written a checkpoint of its own
        time.sleep(rnd.uniform(0.0, 0.6))  # then kill at a random moment, often mid-write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        step = load_checkpoint(latest)["step"]  # must load, whatever the moment
        assert step > steps_seen[-1]  # and each run resumed from the previous one's progress
        steps_seen.append(step)


def test_ddp_two_process_gloo_step(tmp_path, corpus):
    cfg = cfg_for(tmp_path, corpus, steps=2, checkpoint_every=2)
    # cache first so both ranks only open it
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        "-m",
        "vqconvert",
        "train",
        *cfg.data,
        "--run-dir",
        cfg.run_dir,
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--crop-seconds",
        "0.064",
        "--cache-dir",
        cfg.cache_dir,
        "--checkpoint-every",
        "2",
        "--validate-every",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = load_checkpoint(Path(cfg.run_dir) / "latest.pt")
    assert ckpt["step"] == 2
    assert not (Path(cfg.run_dir) / "step_0000002.pt").exists()  # keep_every is 5000
    written = json.loads((Path(cfg.run_dir) / "config.json").read_text())  # by rank 0 only
    assert written["train_config"] == ckpt["train_config"] and written["model_config"]["preset"] == "tiny"


def test_tiny_model_learns_on_toy_corpus(tmp_path, corpus):
    cfg = cfg_for(
        tmp_path,
        corpus,
        steps=60,
        batch_size=4,
        crop_seconds=0.128,
        lr=3e-3,
        validate_every=60,
        checkpoint_every=60,
        warmup_steps=5,
    )
    torch.manual_seed(0)
    Trainer(cfg, progress=False).run()
    rows = [json.loads(x) for x in (Path(cfg.run_dir) / "log.jsonl").read_text().splitlines()]
    bits = [r["bits"] for r in rows if "bits" in r]
    assert np.mean(bits[-10:]) < np.mean(bits[:5]) - 1.0  # at least one bit per sample better
    val = [r for r in rows if "val_bits" in r][-1]
    assert np.isfinite(val["val_speaker_gain_bits"])  # NLL as another speaker minus as the true one


def test_ctrl_c_finishes_the_step_saves_and_exits_cleanly(tmp_path, corpus):
    cfg = cfg_for(tmp_path, corpus, steps=100000, checkpoint_every=1000)
    latest = Path(cfg.run_dir) / "latest.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_train_cmd(cfg), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = Path(cfg.run_dir) / "log.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "interrupted: saved step" in out + err
    step = load_checkpoint(latest)["step"]
    assert step >= 3 and f"saved step {step}" in out + err


def test_perturbation_shifts_only_the_encoder_input_and_is_reproducible(tmp_path, corpus):
    cfg = cfg_for(tmp_path, corpus, crop_seconds=0.256, perturb_semitones=5.0, steps=2)
    tr = Trainer(cfg, progress=False)
    audio, _ = tr.data.batch(3)
    p1, p2 = tr.perturbed(audio, 3), tr.perturbed(audio, 3)
    assert p1.shape == audio.shape and torch.equal(p1, p2)  # a pure function of (seed, step, rank)
    assert not torch.allclose(p1, audio, atol=1e-3)
    assert not torch.equal(tr.perturbed(audio, 4), p1)
    tr.run()  # trains with it
    assert load_checkpoint(Path(cfg.run_dir) / "latest.pt")["train_config"]["perturb_semitones"] == 5.0
    off = Trainer(cfg_for(tmp_path / "off", corpus, steps=2), progress=False)
    assert off.perturbed(audio, 3) is None


def test_robust_cond_run_probes_keeps_ema_and_resumes_exactly(tmp_path, corpus):
    """tiny-cond with every issue-14 training option: the probe is logged, the EMA weights are saved and
    used for inference, and a split run equals an uninterrupted one."""
    opts = dict(
        preset="tiny-cond", steps=4, prev_noise=4.0, enc_shift=16, enc_gain_db=6.0, enc_noise_snr=20.0,
        weights_ema=0.9, probe=("spk1_000",), probe_every=4, probe_seconds=0.25, crop_seconds=0.128,
        sample_by="duration",
    )
    full, rows = run_split_equals_full(tmp_path, corpus, opts)
    assert all("mel" in r for r in rows if "loss" in r)
    assert all(r["cpu_s"] > 0 for r in rows if "audio_s_per_s" in r)  # budgets compare in CPU time
    probe = [r for r in rows if "probe_t0.8_mel_l1" in r]
    assert [r["step"] for r in probe] == [4]
    assert probe[0]["probe_cpu_s"] > 0
    assert probe[0]["probe_mel_head_l1"] > 0 and "probe_gl_wer" in probe[0] and "probe_t1_stoi" in probe[0]
    ckpt = load_checkpoint(Path(full.run_dir) / "latest.pt")
    assert ckpt["ema"]["updates"] == 4
    key = "decoder.head2.bias"
    assert torch.equal(load_model(full.run_dir).model.state_dict()[key].cpu(), ckpt["ema"]["model"][key])
    assert not torch.equal(ckpt["ema"]["model"][key], ckpt["model"][key])


def test_mel_conditioned_run_with_true_mel_crops_resumes_exactly(tmp_path, corpus):
    opts = dict(preset="tiny-melcond", steps=4, true_mel=0.5, crop_seconds=0.128, validate_every=4)
    full, rows = run_split_equals_full(tmp_path, corpus, opts)
    assert any("val_mel_l1" in r for r in rows)
    assert load_model(full.run_dir).config.mel_cond_blocks == 2


def test_probe_utterances_are_held_out_and_must_exist(tmp_path, corpus):
    tr = Trainer(cfg_for(tmp_path, corpus, probe=("spk1_000",), probe_every=2), progress=False)
    names = {tr.data.cache.utterances[i].utt_id for i in tr.data.train_ix}
    assert "spk1_000" not in names
    with pytest.raises(VQConvertError, match="not found"):
        Trainer(cfg_for(tmp_path / "x", corpus, probe=("nobody_1",), probe_every=2), progress=False)


def test_refuses_to_replace_a_run_or_to_drop_its_log(tmp_path, corpus):
    cfg = cfg_for(tmp_path, corpus, steps=1)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True)
    (run / "log.jsonl").write_text('{"step": 10}\n')
    with pytest.raises(TrainingError, match="--resume to continue"):
        Trainer(cfg, progress=False)
    with pytest.raises(TrainingError, match="no latest.pt"):
        Trainer(cfg, resume=True, progress=False)
    assert (run / "log.jsonl").read_text() == '{"step": 10}\n'
    Trainer(cfg, progress=False, force=True).run()
    assert load_checkpoint(run / "latest.pt")["step"] == 1
    with pytest.raises(TrainingError, match="holds a run"):
        Trainer(cfg, progress=False)
