"""Inputs and outputs of the inference commands: expanding arguments into files, where outputs go,
and the checks before any work (usage, overwriting, writable directories)."""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vqconvert.cli.common import fail
from vqconvert.errors import OutputError

STDIN = "-"
_GLOB = re.compile(r"[*?[]")

# -- inputs -------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    files: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (input, reason): count as failed files
    roots: list[Path] = field(default_factory=list)  # what outputs under --out-dir are relative to


def _matches(path: str, exts: tuple[str, ...]) -> bool:
    return os.path.splitext(path)[1].lower() in exts


def _walk(directory: str, exts: tuple[str, ...]) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".") and _matches(f, exts)]
    return found


def _read_list(source: str) -> list[str]:
    try:
        if source == STDIN:
            text = sys.stdin.read()
        else:
            text = Path(source).read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        fail(f"{source}: cannot read the input list ({err.strerror or err})", 2)
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def collect_inputs(args: Iterable[str], from_list: str | None, exts: tuple[str, ...], what: str) -> Inputs:
    """Expand arguments and list entries into files (in order, without repeats)."""
    args = list(args)
    if from_list == STDIN and STDIN in args:
        fail("stdin cannot hold both the input list (--from-list -) and an input (-)", 2)
    if from_list == STDIN and sys.stdin.isatty():
        fail("--from-list - reads the list from stdin, but stdin is a terminal", 2)
    if from_list is not None:
        args += _read_list(from_list)
    if args.count(STDIN) > 1:
        fail("- (stdin) can be given only once", 2)
    if STDIN in args and sys.stdin.isatty():
        fail("- reads the input file from stdin, but stdin is a terminal (pipe or redirect a file into it)", 2)
    out = Inputs()
    seen: set[str] = set()

    def add(path: str, root: Path | None) -> None:
        key = path if path == STDIN else os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.files.append(path)
            if root is not None:
                out.roots.append(root)

    for arg in args:
        if arg == STDIN:
            add(STDIN, None)
        elif os.path.isdir(arg):
            found = _walk(arg, exts)
            if not found:
                out.problems.append((arg, f"directory holds no {what} files"))
            for f in found:
                add(f, Path(arg))
        elif not os.path.lexists(arg) and _GLOB.search(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            files = []
            for m in matches:
                files += [(f, Path(m)) for f in _walk(m, exts)] if os.path.isdir(m) else [(m, Path(m).parent)]
            if not files:
                out.problems.append((arg, "no files match this pattern"))
            for f, root in files:
                add(f, root)
        else:
            add(arg, Path(arg).parent)  # a missing file fails later, with the reader's message
    return out


def common_root(roots: list[Path]) -> Path:
    if not roots:
        return Path(".")
    try:
        return Path(os.path.commonpath([os.path.abspath(r) for r in roots]))
    except ValueError:  # different drives
        return Path(".")


# -- outputs ------------------------------------------------------------------------------------------


def output_path(src: str, suffix: str, out: str | None, out_dir: Path | None, root: Path) -> str:
    """Where the output of `src` goes: -o, else under --out-dir, else beside the input."""
    if out is not None:
        return out
    if src == STDIN:
        return STDIN if out_dir is None else str(out_dir / f"stdin{suffix}")
    p = Path(src)
    name = p.stem + suffix
    if out_dir is None:
        return str(p.with_name(name))
    try:
        rel = Path(os.path.abspath(p.parent)).relative_to(root)
    except ValueError:
        rel = Path()
    return str(out_dir / rel / name)


def _same_file(a: str, b: str) -> bool:
    if STDIN in (a, b):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


class Planner:
    """Checks outputs before any work: not the input, not planned twice, not existing unless --force."""

    def __init__(self, force: bool) -> None:
        self.force = force
        self.planned: dict[str, str] = {}

    def check(self, src: str, dst: str) -> None:
        if dst == STDIN:
            if STDIN in self.planned:
                raise OutputError("only one output can go to stdout")
            self.planned[STDIN] = src
            return
        if _same_file(src, dst):
            raise OutputError(f"output {dst} is the input file itself; refusing to overwrite it")
        key = os.path.abspath(dst)
        if key in self.planned:
            raise OutputError(f"output {dst} would also be written from {self.planned[key]}")
        if os.path.isdir(dst):
            raise OutputError(f"output {dst} is a directory")
        if os.path.lexists(dst) and not self.force:
            raise OutputError(f"output {dst} already exists (use --force to overwrite it)")
        why = unwritable_dir(Path(dst).parent)
        if why:
            raise OutputError(f"cannot write {dst}: {why}")
        self.planned[key] = src


def unwritable_dir(directory: Path) -> str | None:
    """Why files cannot be created in `directory` (made later if missing), or None when they can."""
    d = Path(os.path.abspath(directory))
    while not d.exists() and not d.is_symlink() and d.parent != d:
        d = d.parent
    if not d.is_dir():
        return f"{d} is not a directory"
    if not os.access(d, os.W_OK | os.X_OK):
        return f"directory {d} is not writable"
    return None


def check_usage(inputs: Inputs, out: str | None, out_dir: Path | None, outputs_per_file: int = 1) -> None:
    n = len(inputs.files) + len(inputs.problems)
    if n == 0:
        fail("no input files given (pass files, directories, globs, - or --from-list)", 2)
    if out is not None and out_dir is not None:
        fail("-o/--output and --out-dir cannot be used together", 2)
    if out is not None and (n > 1 or len(inputs.files) == 1 and outputs_per_file > 1):
        fail("-o/--output takes a single input with a single output; use --out-dir for several", 2)
    if out_dir is not None:
        why = unwritable_dir(out_dir)
        if why:
            fail(f"--out-dir {out_dir}: cannot create files there ({why})", 1)


def display(src: str) -> str:
    """An input as messages name it."""
    return "<stdin>" if src == STDIN else src
