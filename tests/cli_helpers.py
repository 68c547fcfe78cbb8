"""In-process CLI calls shared by the command tests."""

from __future__ import annotations

from typer.testing import CliRunner

from vqconvert.cli import app

runner = CliRunner()


def cli(*args, input=None, model=None):
    """Run `vqconvert ARGS` in process (VQCONVERT_MODEL=model when given); unexpected exceptions propagate."""
    env = {"VQCONVERT_MODEL": str(model)} if model is not None else None
    result = runner.invoke(app, [str(a) for a in args], input=input, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def errors(result) -> list[str]:
    """The `error:` lines of a result's stderr."""
    return [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]


def bench_module(name: str):
    """Import bench/NAME.py (not a package) as module NAME, registered in sys.modules (dataclasses look
    their module up there)."""
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
