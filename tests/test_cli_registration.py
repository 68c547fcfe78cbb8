"""Explicit command registration: every `vqconvert/cli/*_cmd.py` module adds its commands through
`register(app)` (nothing registers itself on import), and `register_commands` adds every such module."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

import vqconvert.cli as cli

CMD_MODULES = sorted(p.stem for p in (Path(cli.__file__).parent).glob("*_cmd.py"))


def _names(app: typer.Typer) -> set[str]:
    return {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}


def test_every_command_module_registers_explicitly_and_is_registered():
    assert CMD_MODULES, "no command modules found"
    for name in CMD_MODULES:
        module = importlib.import_module(f"vqconvert.cli.{name}")
        source = Path(module.__file__).read_text(encoding="utf-8")
        assert "from vqconvert.cli import app" not in source and "@app." not in source, name
        fresh = typer.Typer()
        module.register(fresh)
        added = _names(fresh)
        assert added, f"{name}.register adds no command"
        assert added <= _names(cli.app), f"{name} is not in register_commands: {sorted(added - _names(cli.app))}"
