"""vqconvert.fileio: atomic publishing, refusal of a target that appears meanwhile, cleanup, permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from vqconvert.errors import OutputError
from vqconvert.fileio import atomic_output, atomic_path, write_output


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_wav(path) -> None:
    from vqconvert.audio import save_wav

    save_wav(path, np.zeros(160, np.float32), 16000)


def _stream_wav(path) -> None:
    from vqconvert.audio import open_wav_writer

    with open_wav_writer(path, 16000) as w:
        w.write(np.zeros(160, np.float32))


def _write_codes(path) -> None:
    from vqconvert.codes import CodesFile

    CodesFile(indices=np.arange(5), codebook_size=8, fingerprint="f").save(path)


def _write_checkpoint(path) -> None:
    from vqconvert.checkpoint import save_checkpoint
    from vqconvert.config import preset
    from vqconvert.model import VQVAE

    save_checkpoint(path, VQVAE(preset("tiny", n_speakers=1)), ["a"])


@pytest.mark.parametrize(
    "name, write",
    [("a.wav", _write_wav), ("b.wav", _stream_wav), ("c.vqc", _write_codes), ("d.pt", _write_checkpoint)],
)
def test_written_files_have_ordinary_permissions(tmp_path, umask_027, name, write):
    path = tmp_path / name
    write(path)
    assert _mode(path) == 0o666 & ~umask_027  # not mkstemp's 0600
    assert os.listdir(tmp_path) == [name]


def test_atomic_path_publishes_only_at_the_end_and_overwrites_when_asked(tmp_path):
    path = tmp_path / "x.bin"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.is_file() and not path.exists()
        tmp.write_bytes(b"one")
    assert path.read_bytes() == b"one"
    with pytest.raises(FileExistsError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"two")
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(b"three")
    assert path.read_bytes() == b"three" and os.listdir(tmp_path) == ["x.bin"]


def test_a_target_that_appears_meanwhile_is_kept(tmp_path):
    path = tmp_path / "x.bin"
    with pytest.raises(OutputError, match=r"x.bin: already exists; refusing to overwrite it \(use --force\)"):
        with atomic_output(path, hint=" (use --force)") as tmp:
            tmp.write_bytes(b"new")
            path.write_bytes(b"theirs")
    assert path.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["x.bin"]


def test_failures_leave_nothing_and_the_callers_error_passes_through(tmp_path):
    path = tmp_path / "x.bin"
    with pytest.raises(ZeroDivisionError):
        with atomic_output(path) as tmp:
            tmp.write_bytes(b"half")
            1 / 0  # noqa: B018
    with pytest.raises(OutputError, match="is a directory"):
        write_output(tmp_path, b"")
    with pytest.raises(OutputError, match="does not exist"):
        write_output(tmp_path / "no" / "x.bin", b"")
    assert os.listdir(tmp_path) == []
    write_output(path, b"data")
    with pytest.raises(OutputError, match="x.bin: already exists; refusing to overwrite it$"):
        write_output(path, b"other")
    assert path.read_bytes() == b"data" and os.listdir(tmp_path) == ["x.bin"]
