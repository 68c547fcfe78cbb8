"""Shared fixtures: short generated audio clips and small fake corpora."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # works without `pip install -e .`
    sys.path.insert(0, str(ROOT))

SPEAKERS = ("p225", "p280", "p315")


def _signal(seconds: float, sr: int, channels: int, kind: str, amp: float, seed: int) -> np.ndarray:
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    if kind == "noise":
        sig = np.random.default_rng(seed).uniform(-1, 1, (n, channels))
    else:
        sig = np.stack([np.sin(2 * np.pi * 220.0 * (c + 1) * t) for c in range(channels)], axis=1)
    return (amp * sig).astype(np.float32)


@pytest.fixture
def make_wav(tmp_path: Path) -> Callable[..., Path]:
    """make_wav(name, seconds=0.25, sr=16000, channels=1, subtype="PCM_16", kind="sine", amp=0.5)."""

    def make(
        name: str = "clip.wav",
        seconds: float = 0.25,
        sr: int = 16000,
        channels: int = 1,
        subtype: str | None = "PCM_16",
        kind: str = "sine",
        amp: float = 0.5,
        fmt: str | None = None,
        seed: int = 0,
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _signal(seconds, sr, channels, kind, amp, seed)
        sf.write(path, data[:, 0] if channels == 1 else data, sr, subtype=subtype, format=fmt)
        return path

    return make


def _clip(path: Path, seed: int, sr: int = 16000, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sig = _signal(0.3, sr, 1, "sine", 0.5, seed)[:, 0]
    sig[: sr // 10] = 0.0  # leading silence for the trimmer
    sf.write(path, sig, sr, format=fmt)


@pytest.fixture
def vctk080_tree(tmp_path: Path) -> Path:
    """VCTK 0.80: p280 absent from speaker-info, p315 without txt, a stray p376_295.raw."""
    root = tmp_path / "vctk080"
    for s, spk in enumerate(SPEAKERS):
        for u in range(1, 4):
            _clip(root / "wav48" / spk / f"{spk}_00{u}.wav", seed=10 * s + u)
            if spk != "p315":
                (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
                (root / "txt" / spk / f"{spk}_00{u}.txt").write_text(f"Sentence {u} of {spk}.\n")
    (root / "wav48" / "p376").mkdir(parents=True)
    (root / "wav48" / "p376" / "p376_295.raw").write_bytes(b"\0" * 64)
    _clip(root / "wav48" / "p376" / "p376_001.wav", seed=99)
    (root / "speaker-info.txt").write_text(
        "ID  AGE  GENDER  ACCENTS  REGION\n225  23  F    English    Southern  England\n"
        "315  18  M    American    Connecticut\n\n376  22  M    Indian\n"
    )
    return root


@pytest.fixture
def vctk092_tree(tmp_path: Path) -> Path:
    """VCTK 0.92: flac with _mic1 and _mic2 (p280 has mic1 only), p315 without txt."""
    root = tmp_path / "vctk092"
    for s, spk in enumerate(SPEAKERS):
        for u in range(1, 4):
            for m, mic in enumerate(("mic1", "mic2")):
                if not (spk == "p280" and mic == "mic2"):
                    _clip(root / "wav48_silence_trimmed" / spk / f"{spk}_00{u}_{mic}.flac", 10 * s + u + m)
            if spk != "p315":
                (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
                (root / "txt" / spk / f"{spk}_00{u}.txt").write_text(f"Sentence {u} of {spk}.\n")
    (root / "speaker-info.txt").write_text(
        "ID  AGE  GENDER  ACCENTS  REGION  COMMENTS\np225  23  F  English  Southern  England\n"
        "p280  25  F  France  (mic2 files unavailable)\np315  18  M  American  Connecticut\n"
    )
    return root


@pytest.fixture
def generic_tree(tmp_path: Path) -> Path:
    """<speaker>/<utt>.{wav,flac} with a transcript beside some clips."""
    root = tmp_path / "generic"
    for s, spk in enumerate(("alice", "bob", "carol")):
        for u in range(3):
            ext = "flac" if u == 2 else "wav"
            _clip(root / spk / f"{spk}_{u}.{ext}", seed=10 * s + u)
        (root / spk / f"{spk}_0.txt").write_text(f"hello from {spk}\n")
    (root / "bob" / "notes.md").write_text("not audio")
    return root


# --- inference / CLI fixtures (test_codes.py, test_cli.py, test_bad_inputs.py) -----------------------

TINY_SPEAKERS = ("spk-a", "spk-b", "spk-c")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: on this shared 2-core machine more threads get 10-50x slower when
    another process is busy (and the Trainer raises the count to the core count)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    yield


def write_tiny_corpus(root: Path, per_speaker: int = 4, seconds: float = 0.5) -> Path:
    """root/<spk-a|spk-b|spk-c>/<spk>_NN.wav: sine + noise mixes with a pitch per speaker."""
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    for s, spk in enumerate(TINY_SPEAKERS):
        (root / spk).mkdir(parents=True, exist_ok=True)
        for u in range(per_speaker):
            rng = np.random.default_rng(100 * s + u)
            f0 = 140.0 * (1.5**s) * (1 + 0.05 * u)
            sig = 0.4 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 2.7 * f0 * t + u)
            sig = sig * (0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t))
            sig = sig + 0.05 * (s + 1) * rng.standard_normal(t.size)
            sf.write(root / spk / f"{spk}_{u:02d}.wav", sig.astype(np.float32), sr)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A `tiny` model trained for a few steps by the real Trainer on 3 generated speakers
    (spk-a, spk-b, spk-c); its run directory's latest.pt."""
    import torch

    from vqconvert.config import TrainConfig
    from vqconvert.train import Trainer

    base = tmp_path_factory.mktemp("tiny_model")
    corpus = write_tiny_corpus(base / "corpus")
    cfg = TrainConfig(
        data=(str(corpus),),
        run_dir=str(base / "run"),
        preset="tiny",
        steps=20,
        batch_size=4,
        crop_seconds=0.25,
        warmup_steps=5,
        validate_every=0,
        checkpoint_every=1000,
        keep_every=0,
        val_fraction=0.0,
        cache_dir=str(base / "cache"),
        device="cpu",
        amp="off",
        seed=0,
    )
    trainer = Trainer(cfg, log=lambda *_: None, progress=False)
    torch.set_num_threads(1)  # after the Trainer, which sets the core count
    trainer.run()
    path = base / "run" / "latest.pt"
    assert path.is_file()
    return path
