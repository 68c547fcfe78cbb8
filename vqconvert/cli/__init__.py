"""The `vqconvert` command line: `app`, with the subcommands of the `*_cmd` modules added by
`register_commands`."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from typing import Annotated

import typer

from vqconvert import __version__
from vqconvert.cli.common import fail
from vqconvert.errors import VQConvertError

app = typer.Typer(
    name="vqconvert",
    help="Voice conversion with a VQ-VAE: speech -> discrete codes -> speech in any voice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vqconvert {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Voice conversion with a VQ-VAE. Logs and progress go to stderr; data goes to files or stdout."""


def register_commands(app: typer.Typer) -> None:
    """Add every subcommand to `app`, in the order --help lists them: each command module has a
    `register(app)` and registers nothing when imported."""
    from vqconvert.cli import (
        analyze_cmd,
        corpus_cmd,
        enroll_cmd,
        eval_cmd,
        infer_cmd,
        info_cmd,
        melnet_cmd,
        prior_cmd,
        train_cmd,
    )

    modules = (corpus_cmd, eval_cmd, infer_cmd, info_cmd, train_cmd, analyze_cmd, enroll_cmd, prior_cmd, melnet_cmd)
    for module in modules:
        module.register(app)


register_commands(app)


def _terminate(signum, frame) -> None:
    # SIGTERM unwinds like an exception so that atomic writers remove their temp files.
    raise SystemExit(128 + signum)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A warning (e.g. the C generator falling back to torch) is one line on stderr, as errors are.
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def main() -> None:
    """Entry point: expected failures become one line on stderr and exit code 1."""
    signal.signal(signal.SIGTERM, _terminate)
    warnings.showwarning = _show_warning
    try:
        app(standalone_mode=True)
    except VQConvertError as e:  # pragma: no cover - typer usually re-raises through SystemExit
        fail(str(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our stdout went away (`| head`): stop quietly, as other Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
