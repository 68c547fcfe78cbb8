"""A plain (non-editable) install ships the default model and finds it outside the source checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pip_available() -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _pip_available(), reason="no pip in this environment")
def test_non_editable_install_finds_the_shipped_model(tmp_path):
    pytest.importorskip("setuptools")  # the build backend, used without build isolation (no network)
    # a copy of what a source distribution holds: the package, the model, the project metadata
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "vqconvert", src / "vqconvert", symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.so")
    )
    (src / "models").mkdir()
    shutil.copy2(ROOT / "models" / "vqconvert-synth-small.pt", src / "models")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(site), str(src)], check=True, cwd=tmp_path, capture_output=True)
    shutil.rmtree(src)  # nothing of the source tree is left to fall back on
    shipped = site / "vqconvert" / "assets" / "vqconvert-synth-small.pt"
    assert shipped.is_file() and not shipped.is_symlink()

    env = {k: v for k, v in os.environ.items() if k != "VQCONVERT_MODEL"}
    env.update(PYTHONPATH=str(site), VQCONVERT_NO_BUILD="1", OMP_NUM_THREADS="1")
    run = subprocess.run(
        [sys.executable, "-m", "vqconvert", "info", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["path"] == str(shipped) and info["preset"] == "small" and info["speakers"] > 0
