"""Layering: the model package loads no audio I/O libraries."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_model_loads_no_audio_libraries():
    code = (
        "import sys, vqconvert.model, vqconvert.model.mulaw;"
        "print(','.join(m for m in ('soundfile', 'soxr', 'librosa', 'vqconvert.audio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
