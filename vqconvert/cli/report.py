"""Reporting for the inference commands: progress on stderr, one line per failed file, the summary
and the exit code."""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager

import typer

from vqconvert.cli.common import console, fail
from vqconvert.errors import VQConvertError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(text: str) -> str:
    """Whitespace folded, terminal escape codes (some torch messages carry them) removed."""
    return " ".join(_ANSI.sub("", str(text)).split())


def describe(name: str, err: BaseException) -> str:
    """One line `name: reason`, without repeating a name the message already starts with."""
    msg = one_line(str(err))
    if not isinstance(err, (VQConvertError, OSError)):
        msg = f"{type(err).__name__}: {msg}" if msg else type(err).__name__
    return msg if msg.startswith(f"{name}:") else f"{name}: {msg}"


class Report:
    """Progress bar over files on stderr, one error line per failure, the summary, the exit code."""

    def __init__(self, total: int, verb: str, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.total, self.quiet = total, quiet
        self.ok = self.failed = 0
        self.progress = Progress(
            TextColumn(verb),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[name]}"),
            console=console,
            transient=True,
            disable=quiet or not console.is_terminal,
        )
        self.task = self.progress.add_task(verb, total=total, name="")
        self.live = not self.progress.disable

    def __enter__(self) -> Report:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def current(self, name: str) -> None:
        self.progress.update(self.task, name=name)

    def error(self, name: str, err: BaseException | str) -> None:
        line = describe(name, err) if isinstance(err, BaseException) else f"{name}: {err}"
        print(f"error: {one_line(line)}", file=sys.stderr, flush=True)

    def done(self, name: str, err: BaseException | str | None = None) -> None:
        if err is None:
            self.ok += 1
        else:
            self.failed += 1
            self.error(name, err)
        self.progress.advance(self.task)

    def finish(self) -> None:
        self.progress.stop()
        # A single failed file already had its one error line; the summary is for batches and successes.
        if not self.quiet and not (self.total == 1 and self.failed):
            noun = "file" if self.total == 1 else "files"
            print(f"{self.total} {noun}: {self.ok} ok, {self.failed} failed", file=sys.stderr, flush=True)
        if self.failed:
            raise typer.Exit(1)


@contextmanager
def usage_errors():
    """VQConvertError escaping a command (not a single file's) -> one line, exit 1."""
    try:
        yield
    except VQConvertError as err:
        fail(str(err))
