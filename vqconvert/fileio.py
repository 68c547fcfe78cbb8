"""Atomic file output: a file appears at its path complete, or not at all. Bytes and files only.

The content goes to a temp file beside the target (same directory, so the same filesystem) with an
ordinary file's permissions (0o666 less the umask; mkstemp alone makes 0600), is fsync'd, and is then
published: by `os.link` when not overwriting, which refuses a target that appeared meanwhile, or by
`os.replace` when overwriting. The directory is fsync'd last, so the new name survives a crash too.
The temp file is removed on any failure, the caller's own included.

`atomic_path` raises plain OSErrors (FileExistsError for a target that appeared meanwhile);
`atomic_output` and `write_output` are for outputs a user named: every failure is a one-line
OutputError naming the target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from vqconvert.errors import OutputError


def file_mode() -> int:
    """The permissions `open(path, "w")` gives a new file: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(directory: str | Path) -> None:
    """Make the entries of `directory` durable (a no-op where the filesystem cannot sync a directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _new_temp(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return Path(tmp)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # FileExistsError when `path` appeared meanwhile
    except FileExistsError:
        raise
    except OSError:
        os.replace(tmp, path)  # a filesystem without hard links
    else:
        os.unlink(tmp)


def _atomic(path: Path, overwrite: bool, guard: Callable[[], contextlib.AbstractContextManager]) -> Iterator[Path]:
    """The steps of `atomic_path`; `guard()` wraps this module's own steps, not the caller's block."""
    with guard():
        tmp = _new_temp(path)
    try:
        yield tmp  # the caller's errors pass through as they are
        with guard():
            _fsync_file(tmp)
            _publish(tmp, path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with guard():
        fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """A temp path beside `path` (an empty file) for a writer that wants a name (soundfile, torch.save),
    published at `path` when the block ends without an exception, removed otherwise.

    The directory must exist. OSError when a step fails; FileExistsError when `overwrite` is False and
    `path` exists by the time the file is published (the existing file is kept).
    """
    yield from _atomic(Path(path), overwrite, contextlib.nullcontext)


def check_output(path: Path, overwrite: bool, hint: str = "") -> None:
    """OutputError unless a new file can go to `path`: not a directory, not an existing file (unless
    `overwrite`; `hint` ends that message), in an existing directory."""
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; refusing to overwrite it{hint}")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: directory {path.parent} does not exist")


@contextlib.contextmanager
def _output_errors(path: Path, hint: str) -> Iterator[None]:
    try:
        yield
    except FileExistsError:
        raise OutputError(f"{path}: already exists; refusing to overwrite it{hint}") from None
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None


@contextlib.contextmanager
def atomic_output(path: str | Path, *, overwrite: bool = False, hint: str = "") -> Iterator[Path]:
    """`atomic_path` for an output a user named: `check_output` first, and each failure of this
    module's steps is an OutputError naming `path` (`hint` ends the already-exists message). Errors of
    the caller's block pass through unchanged."""
    path = Path(path)
    check_output(path, overwrite, hint)
    yield from _atomic(path, overwrite, lambda: _output_errors(path, hint))


def write_output(path: str | Path, data: bytes, *, overwrite: bool = False, hint: str = "") -> None:
    """Write `data` to `path` atomically (see `atomic_output`); every failure is an OutputError."""
    path = Path(path)
    with atomic_output(path, overwrite=overwrite, hint=hint) as tmp, _output_errors(path, hint):
        tmp.write_bytes(data)


def write_stdout(data: bytes, what: str) -> None:
    """Write `data` to the binary stdout after what the text layer holds; OutputError (`what` names the
    content) when stdout is closed or full."""
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as err:  # BrokenPipeError included
        raise OutputError(f"cannot write {what} to stdout ({err})") from None


def safe_name(name: str, fallback: str = "x") -> str:
    """`name` (a speaker, an utterance) made safe for a file name: characters other than letters,
    digits, `_.+-` become `_`, leading and trailing dots go; `fallback` when nothing is left."""
    return re.sub(r"[^\w.+-]", "_", name).strip(".") or fallback


def ensure_parent(path: str | Path) -> None:
    """Create the directory of an output ("-" = stdout: nothing) just before it is written."""
    if str(path) == "-":
        return
    parent = Path(path).parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the output directory {parent} ({err.strerror or err})") from None
