"""The README's quick start: its commands exist with the options it shows, and the demo runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from vqconvert.checkpoint import load_model
from vqconvert.cli import app
from vqconvert.shipped import default_model_path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def readme_commands() -> list[list[str]]:
    """`vqconvert ...` lines of the README's shell code blocks, split into words."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    cmds = []
    for block in blocks:
        for line in block.splitlines():
            for part in re.split(r"\|", line.split("#")[0]):
                words = shlex.split(part.strip()) if part.strip() else []
                if words and words[0] == "-m":
                    continue
                if "vqconvert" in words:
                    cmds.append(words[words.index("vqconvert") + 1 :])
    return cmds


def test_readme_shows_the_two_setup_commands():
    assert "make demo" in README and "make test" in README
    assert re.search(r"^demo:", MAKEFILE, flags=re.M) and re.search(r"^test:", MAKEFILE, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("words", readme_commands(), ids=lambda w: " ".join(w[:2]))
def test_readme_command_and_its_options_exist(words):
    path = words[:2] if words[0] == "corpus" else words[:1]  # `corpus` has subcommands
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for opt in (w.split("=")[0] for w in words if w.startswith("--")):
        assert opt in result.output, f"{' '.join(path)} has no option {opt}"


def test_shipped_model_knows_the_demo_voices():
    loaded = load_model(default_model_path())
    demo = re.search(r"^demo:.*?\n((?:\t.*\n)+)", MAKEFILE, flags=re.M).group(1)
    for voice in re.findall(r"--speaker (\S+)", demo):
        assert voice in loaded.speakers
    assert default_model_path().stat().st_size <= 25e6


def test_demo_command_converts_the_bundled_clip(tmp_path):
    demo = re.search(r"^demo:.*?\n((?:\t.*\n)+)", MAKEFILE, flags=re.M).group(1)
    line = next(ln.strip() for ln in demo.splitlines() if "transfer" in ln)
    args = shlex.split(line)[1:]
    args[args.index("--out-dir") + 1] = str(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "vqconvert", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    outs = sorted(tmp_path.glob("demo.*.wav"))
    assert len(outs) == 2
    src = sf.info(ROOT / "data" / "samples" / "demo.wav")
    for out in outs:
        info = sf.info(out)
        assert info.samplerate == 16000 and abs(info.duration - src.duration) < 0.01
