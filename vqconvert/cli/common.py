"""Helpers shared by the subcommands: stderr console, one-line failures, device choice, common options."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console

# Everything for people goes to stderr so stdout stays clean for data (`-o -`).
console = Console(stderr=True, highlight=False)

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Checkpoint file or run directory. Default: $VQCONVERT_MODEL, else the "
        "shipped models/vqconvert-synth-small.pt.",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on one line of stderr and exit with `code`."""
    one_line = " ".join(str(message).split())
    print(f"error: {one_line}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def info(message: str) -> None:
    console.print(message)


def resolve_device(name: str) -> str:
    """`vqconvert.devices.resolve_device`, or exit 1 with its one line."""
    from vqconvert.devices import DeviceError
    from vqconvert.devices import resolve_device as resolve

    try:
        return resolve(name)
    except DeviceError as err:
        fail(str(err))
