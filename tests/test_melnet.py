"""The mel net (vqconvert.melnet): model, file, training, and `train-mel` + `--vocoder griffin-lim`."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.conftest import write_tiny_corpus
from vqconvert.checkpoint import load_model
from vqconvert.cli import app
from vqconvert.melnet.model import MELNET_PRESETS, CodeMelNet, MelNetConfig
from vqconvert.melnet.store import MelNetError, default_melnet_path, load_melnet, save_melnet
from vqconvert.melnet.train import MelTrainConfig, MelUtt, evaluate, mel_loss, train_melnet

SPEAKERS = ["spk-a", "spk-b", "spk-c"]


def test_forward_shape_and_context():
    cfg = MelNetConfig(codebook_size=16, n_speakers=3, n_mels=8, channels=8, context=7)
    net = CodeMelNet(cfg)
    codes = torch.randint(0, 16, (2, 40))
    out = net(codes, torch.tensor([0, 2]))
    assert out.shape == (2, 8, 40)
    # a code change moves only the frames within +-context of it
    changed = codes.clone()
    changed[:, 20] = (changed[:, 20] + 1) % 16
    diff = (net(changed, torch.tensor([0, 2])) - out).abs().sum(dim=(0, 1))
    assert diff[13:28].sum() > 0 and diff[:13].sum() == 0 and diff[28:].sum() == 0
    assert cfg.dilations() == [1, 2, 4]
    assert MELNET_PRESETS["large"].dilations() == [1, 2, 4, 8, 16, 32, 64] * 2
    with pytest.raises(ValueError, match="2\\^n - 1"):
        MelNetConfig(context=10).dilations()


def _utts(n: int, seed: int) -> list[MelUtt]:
    """Utterances whose log-mel is a fixed function of code and speaker: learnable exactly."""
    g = torch.Generator().manual_seed(0)
    table, voice = torch.randn(8, 4, generator=g), torch.randn(3, 4, generator=g)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        codes = torch.from_numpy(rng.integers(0, 8, size=int(rng.integers(20, 60)))).to(torch.int16)
        spk = k % 3
        mel = (table[codes.long()] + voice[spk]).T.contiguous().half()
        out.append(MelUtt([codes], mel, spk, f"u{seed}_{k}"))
    return out


def test_training_learns_codes_and_speaker():
    train, val = _utts(30, 0), _utts(6, 1)
    cfg = MelTrainConfig(
        preset="tiny", steps=300, batch_size=8, crop_frames=32, lr=3e-3, warmup_steps=10, validate_every=0, copies=0
    )
    net, metrics = train_melnet(train, val, codebook_size=8, n_speakers=3, cfg=cfg)
    start = float(np.mean([(u.mel.float() - u.mel.float().mean()).abs().mean() for u in val]))
    assert metrics["steps"] == 300 and metrics["val_l1"] < 0.5 * start
    assert metrics["val_speaker_gain"] > 0.1  # the voice comes from the speaker embedding
    assert evaluate(net, val)["l1"] == pytest.approx(metrics["val_l1"])
    # a time budget stops it early
    _, quick = train_melnet(train, val, 8, 3, dataclasses.replace(cfg, steps=10**6, max_minutes=0.02))
    assert 0 < quick["steps"] < 10**6


def test_mel_loss_masks_padding_and_the_delta_term_penalises_blur():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 8, 30, generator=g)
    mask = torch.ones(2, 1, 30)
    mask[1, :, 20:] = 0
    pred = target.clone()
    pred[1, :, 20:] += 100.0  # padding: ignored
    assert mel_loss(pred, target, mask, 1.0)[0] == pytest.approx(0.0, abs=1e-6)
    # a blurred prediction (each bin's mean) against a noisy one of the same plain L1
    blur = target.mean(dim=2, keepdim=True).expand_as(target)
    l1_blur = mel_loss(blur, target, mask)[1]
    noisy = target + l1_blur * torch.sign(torch.randn(target.shape, generator=g))
    loss_blur, plain_blur = mel_loss(blur, target, mask, 1.0)
    loss_noisy, plain_noisy = mel_loss(noisy, target, mask, 1.0)
    assert plain_noisy == pytest.approx(float(plain_blur), rel=1e-4)
    assert loss_blur > plain_blur and loss_noisy > plain_noisy
    assert mel_loss(blur, target, mask, 0.0)[0] == plain_blur
    # differences along time: the blur misses the target's, so the delta term is what it pays
    assert loss_blur - plain_blur > 0.5 * float(plain_blur)


def test_delta_weight_trains():
    cfg = MelTrainConfig(preset="tiny", steps=40, batch_size=4, crop_frames=16, validate_every=0, copies=0)
    _, plain = train_melnet(_utts(12, 0), _utts(3, 1), 8, 3, cfg)
    _, delta = train_melnet(_utts(12, 0), _utts(3, 1), 8, 3, dataclasses.replace(cfg, delta_weight=1.0))
    assert delta["steps"] == 40 and delta["val_l1"] != plain["val_l1"]
    assert delta["history"][-1]["val_l1"] == delta["val_l1"]


def test_file_roundtrip_and_refusals(tmp_path, tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    net = CodeMelNet(MelNetConfig(codebook_size=loaded.config.codebook_size, n_speakers=3, channels=8, context=3))
    path = tmp_path / "m.mel.pt"
    save_melnet(path, net, SPEAKERS, ["spk-a", "spk-b"], loaded.fingerprint, metrics={"val_l1": 1.0})
    got = load_melnet(path)
    got.check_model(loaded)
    assert got.trained == ["spk-a", "spk-b"] and got.metrics["val_l1"] == 1.0
    for k, v in net.state_dict().items():
        assert torch.equal(got.net.state_dict()[k], v)
    got.check_speaker(1)
    with pytest.raises(MelNetError, match="not trained on speaker 'spk-c'"):
        got.check_speaker(2)
    other = dataclasses.replace(got, fingerprint="0" * 16)
    with pytest.raises(MelNetError, match="codes of model"):
        other.check_model(loaded)
    with pytest.raises(MelNetError, match="not found"):
        load_melnet(tmp_path / "none.mel.pt")
    (tmp_path / "junk.mel.pt").write_bytes(b"not a torch file")
    with pytest.raises(MelNetError, match="not a readable"):
        load_melnet(tmp_path / "junk.mel.pt")
    torch.save({"format": "vqconvert-melnet", "version": 99}, tmp_path / "new.mel.pt")
    with pytest.raises(MelNetError, match="version 99"):
        load_melnet(tmp_path / "new.mel.pt")
    assert default_melnet_path("models/x.pt").name == "x.mel.pt"


@pytest.fixture(scope="module")
def model_with_melnet(tmp_path_factory, tiny_checkpoint):
    """A copy of the tiny model with a mel net beside it, trained by `train-mel` on spk-a and spk-b."""
    base = tmp_path_factory.mktemp("melnet")
    model = base / "tiny.pt"
    shutil.copy(tiny_checkpoint, model)
    corpus = write_tiny_corpus(base / "corpus", per_speaker=3)
    shutil.rmtree(corpus / "spk-c")
    res = CliRunner().invoke(
        app,
        [
            "train-mel",
            str(corpus),
            "-m",
            str(model),
            "--preset",
            "tiny",
            "--steps",
            "30",
            "--copies",
            "1",
            "--cache-dir",
            str(base / "cache"),
            "--validate-every",
            "10",
            "--delta-weight",
            "0.5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "held-out L1" in res.output and "wrote" in res.output
    return model


def test_train_mel_writes_beside_the_model_and_refuses_to_overwrite(model_with_melnet):
    lm = load_melnet(default_melnet_path(model_with_melnet))
    assert lm.trained == ["spk-a", "spk-b"] and lm.metrics["steps"] == 30 and lm.train["copies"] == 1
    assert lm.train["delta_weight"] == 0.5
    assert len(lm.metrics["history"]) == 3
    res = CliRunner().invoke(app, ["train-mel", "nowhere", "-m", str(model_with_melnet), "--steps", "1"])
    assert res.exit_code == 1 and "exists" in res.output and "--force" in res.output


def test_info_names_what_griffin_lim_renders(model_with_melnet, tiny_checkpoint):
    import json

    res = CliRunner().invoke(app, ["info", str(model_with_melnet), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["griffin_lim_renders"].startswith("the mel net tiny.mel.pt (2 speakers, 30 steps")
    assert (
        json.loads(CliRunner().invoke(app, ["info", str(tiny_checkpoint), "--json"]).output)["griffin_lim_renders"]
        is None
    )


def test_griffin_lim_uses_the_mel_net(tmp_path, make_wav, model_with_melnet):
    from vqconvert.audio import load_audio

    wav = make_wav("in.wav", seconds=0.5)
    runner = CliRunner()
    out = tmp_path / "out.wav"
    base = ["transfer", str(wav), "-m", str(model_with_melnet), "--vocoder", "griffin-lim"]
    res = runner.invoke(app, [*base, "--speaker", "spk-b", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert load_audio(out).shape[0] == load_audio(wav).shape[0]
    # a voice the mel net was not trained on: one line, exit 1, nothing written
    res = runner.invoke(app, [*base, "--speaker", "spk-c", "-o", str(tmp_path / "c.wav")])
    assert res.exit_code == 1 and "not trained on speaker 'spk-c'" in res.output
    assert not (tmp_path / "c.wav").exists()
    # decode: the mel net's speaker check per codes file
    codes = tmp_path / "in.vqc"
    assert runner.invoke(app, ["encode", str(wav), "-m", str(model_with_melnet), "-o", str(codes)]).exit_code == 0
    dec = tmp_path / "dec.wav"
    res = runner.invoke(
        app,
        ["decode", str(codes), "-m", str(model_with_melnet), "-s", "spk-a", "--vocoder", "griffin-lim", "-o", str(dec)],
    )
    assert res.exit_code == 0, res.output and dec.is_file()
    # --mel-net: a broken file is one line; with the wavenet it is a usage error
    bad = tmp_path / "bad.mel.pt"
    bad.write_bytes(b"\0" * 10)
    res = runner.invoke(app, [*base, "--speaker", "spk-a", "--mel-net", str(bad), "-o", str(tmp_path / "b.wav")])
    assert res.exit_code == 1 and "not a readable" in res.output and "Traceback" not in res.output
    res = runner.invoke(
        app,
        [
            "transfer",
            str(wav),
            "-m",
            str(model_with_melnet),
            "--speaker",
            "spk-a",
            "--mel-net",
            str(bad),
            "-o",
            str(tmp_path / "w.wav"),
        ],
    )
    assert res.exit_code == 2


def test_mel_net_of_another_model_is_refused(tmp_path, make_wav, model_with_melnet, tiny_checkpoint):
    import torch as t

    other = tmp_path / "other.pt"
    ckpt = t.load(tiny_checkpoint, weights_only=True)
    key = next(k for k in ckpt["model"] if k.startswith("quantizer"))
    ckpt["model"][key] = ckpt["model"][key] + 1.0
    t.save(ckpt, other)
    shutil.copy(default_melnet_path(model_with_melnet), default_melnet_path(other))
    wav = make_wav("in.wav", seconds=0.25)
    res = CliRunner().invoke(
        app,
        [
            "transfer",
            str(wav),
            "-m",
            str(other),
            "--speaker",
            "spk-a",
            "--vocoder",
            "griffin-lim",
            "-o",
            str(tmp_path / "o.wav"),
        ],
    )
    assert res.exit_code == 1 and "trained on the codes of model" in res.output


def test_render_refuses_a_speaker_the_net_never_heard(model_with_melnet):
    from vqconvert.vocoder import render_codes

    loaded = load_model(model_with_melnet)
    lm = load_melnet(default_melnet_path(model_with_melnet))
    codes = torch.zeros(20, dtype=torch.long)
    assert render_codes(loaded.model, codes, 0, n_iter=2, mel_net=lm.net).shape == (20 * loaded.config.hop,)
    with pytest.raises(MelNetError, match="not trained on speaker #2"):
        render_codes(loaded.model, codes, 2, n_iter=2, mel_net=lm.net)


def test_shipped_mel_net_fits_the_shipped_model():
    from vqconvert.shipped import default_model_path

    loaded = load_model(default_model_path())
    lm = load_melnet(default_melnet_path(loaded.path))
    lm.check_model(loaded)
    assert lm.trained == loaded.speakers  # every voice of the shipped model renders


def test_mel_net_option_only_where_audio_is_rendered():
    import typer.main

    cmd = typer.main.get_command(app)
    has = {name: any("--mel-net" in p.opts for p in c.params) for name, c in cmd.commands.items()}
    assert has["decode"] and has["transfer"] and has["evaluate"]
    assert not has["encode"] and not has["train"] and not has["train-mel"]


def test_evaluate_renders_with_the_mel_net(tmp_path, model_with_melnet):
    import json

    corpus = write_tiny_corpus(tmp_path / "corpus", per_speaker=2, seconds=0.25)
    base = [
        "evaluate",
        "-m",
        str(model_with_melnet),
        "--split",
        "all",
        "--limit",
        "4",
        "--vocoder",
        "griffin-lim",
        "--skip",
        "nll,mcd,stoi,pesq,speaker,asr",
        "--json",
        "-q",
    ]
    shutil.rmtree(corpus / "spk-c")
    res = CliRunner().invoke(app, [*base, str(corpus), "--targets", "spk-a,spk-b"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{") :])
    assert out["settings"]["vocoder"] == "griffin-lim" and out["settings"]["mel_net"].endswith("tiny.mel.pt")
    # a named target the mel net never heard: one line before anything runs
    res = CliRunner().invoke(app, [*base, str(corpus), "--targets", "spk-c"])
    assert res.exit_code == 1 and "not trained on speaker 'spk-c'" in res.output and "Traceback" not in res.output
    # a source voice it never heard (its reconstruction): one line too, not a traceback
    write_tiny_corpus(tmp_path / "all", per_speaker=2, seconds=0.25)
    res = CliRunner().invoke(app, [*base, str(tmp_path / "all"), "--targets", "spk-a"])
    assert res.exit_code == 1 and "not trained on speaker" in res.output and "Traceback" not in res.output


def test_tune_encoder_bench_writes_a_matching_pair(tmp_path, model_with_melnet):
    """bench/tune_encoder.py: the tuned model and its folded mel net load and fit each other."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    base = model_with_melnet.parent
    out = tmp_path / "tuned"
    cmd = [sys.executable, str(root / "bench" / "tune_encoder.py"), str(base / "corpus"), "--model",
           str(model_with_melnet), "--mel-net", str(default_melnet_path(model_with_melnet)), "--steps", "3",
           "--max-minutes", "0", "--batch-size", "2", "--validate-every", "0", "--cache-dir", str(base / "cache"),
           "-o", str(out), "--json", str(tmp_path / "log.jsonl")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=300)
    assert res.returncode == 0, res.stderr
    tuned, original = load_model(f"{out}.pt"), load_model(model_with_melnet)
    assert tuned.fingerprint != original.fingerprint and tuned.speakers == original.speakers
    net = load_melnet(f"{out}.mel.pt")
    net.check_model(tuned)
    assert net.trained == ["spk-a", "spk-b"] and net.metrics["steps"] == 3
    row = json.loads((tmp_path / "log.jsonl").read_text())
    assert row["steps"] == 3 and row["freeze_encoder"] is False and 0.0 <= row["codes_changed"] <= 1.0
    assert row["continued_from"]["steps"] == 30
    res = CliRunner().invoke(app, ["info", f"{out}.pt", "--json"])
    renders = json.loads(res.output)["griffin_lim_renders"]
    assert renders.startswith("the mel net tuned.mel.pt (2 speakers, 30 + 3 steps")
    # --from-scratch: a new encoder and mel net, the speakers and split of MODEL
    scratch = tmp_path / "scratch"
    cmd[cmd.index(str(out))] = str(scratch)
    res = subprocess.run([*cmd, "--from-scratch", "tiny"], capture_output=True, text=True, cwd=root, timeout=300)
    assert res.returncode == 0, res.stderr
    new = load_model(f"{scratch}.pt")
    assert new.step == 0 and new.speakers == original.speakers and new.fingerprint != tuned.fingerprint
    net = load_melnet(f"{scratch}.mel.pt")
    net.check_model(new)
    assert net.train["from_scratch"] == "tiny" and "continued_from" not in net.train and net.net.cfg.channels == 128
