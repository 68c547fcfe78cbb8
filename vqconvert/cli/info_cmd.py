"""`vqconvert speakers` and `vqconvert info`: what a model knows and what a file holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.cli.common import ModelOpt, fail
from vqconvert.errors import VQConvertError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _load(model: str | None):
    from vqconvert.cli.loading import load_cli_model

    return load_cli_model(model, "cpu")


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def speakers(
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the voices a model can speak in: index and name (both work as --speaker)."""
    loaded = _load(model)
    if as_json:
        _print_json([{"index": i, "name": n} for i, n in enumerate(loaded.speakers)])
        return
    width = max(len("index"), len(str(len(loaded.speakers) - 1)))
    typer.echo(f"{'index':>{width}}  name")
    for i, name in enumerate(loaded.speakers):
        typer.echo(f"{i:>{width}}  {name}")


def model_info(loaded) -> dict:
    cfg = loaded.config
    from vqconvert.codes import bitrate

    train = (loaded.meta or {}).get("train_config") or {}
    return {
        "kind": "model",
        "path": str(loaded.path),
        "preset": cfg.preset,
        "parameters": loaded.model.num_parameters(),
        "codebook_size": cfg.codebook_size,
        "latent_dim": cfg.latent_dim,
        "hop": cfg.hop,
        "sample_rate": cfg.sample_rate,
        "frame_rate": cfg.sample_rate / cfg.hop,
        "bitrate": bitrate(cfg.sample_rate, cfg.hop, cfg.codebook_size),
        "decoder_receptive_field": cfg.receptive_field,
        "decoder_conditioning": _conditioning(cfg),
        "griffin_lim_renders": _griffin_lim(loaded),
        "steps": loaded.step,
        "trained_steps_planned": train.get("steps"),
        "speakers": len(loaded.speakers),
        "fingerprint": loaded.fingerprint,
        "metrics": (loaded.meta or {}).get("metrics") or {},
    }


def _conditioning(cfg) -> str:
    """What every WaveNet layer is conditioned on, in words."""
    if cfg.cond_blocks <= 0:
        return "codes through one k3 conv (the paper's), speaker embedding"
    net = f"codes + speaker through a network of {cfg.cond_blocks} dilated blocks"
    head = f" with a {cfg.mel_bins}-bin log-mel head" if cfg.mel_bins > 0 else ""
    if cfg.mel_cond_blocks > 0:
        return (
            f"the {cfg.mel_bins}-bin log-mel that {net} predicts, through {cfg.mel_cond_blocks} more blocks "
            f"with the speaker; +-{cfg.cond_context} frames"
        )
    return f"{net}{head}; +-{cfg.cond_context} frames"


def _griffin_lim(loaded) -> str | None:
    """What `--vocoder griffin-lim` renders for this model, in words (None: it cannot)."""
    from vqconvert.melnet.store import MelNetError, find_melnet

    try:
        lm = find_melnet(loaded)
    except MelNetError as err:
        return f"nothing usable: {err}"
    if lm is None:
        return "the model's mel head" if loaded.config.mel_bins > 0 else None
    l1 = lm.metrics.get("val_l1")
    score = f", held-out log-mel L1 {l1:.3f}" if isinstance(l1, float) else ""
    steps = f"{lm.metrics.get('steps', '?')} steps"
    before = (lm.train.get("continued_from") or {}).get("steps")
    if before:  # continued from another net (bench/tune_encoder.py)
        steps = f"{before} + {steps}"
    return f"the mel net {lm.path.name} ({len(lm.trained)} speakers, {steps}{score})"


def codes_info(path: str) -> dict:
    from vqconvert.codes import CodesFile

    codes = CodesFile.load(path)
    size = None if path == "-" else Path(path).stat().st_size
    return {
        "kind": "codes",
        "path": path,
        **codes.header(),
        "duration": round(codes.duration, 6),
        "bitrate": codes.bitrate,
        "file_bytes": size,
    }


def _text(info: dict) -> None:
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in value.items()) or "-"
        elif isinstance(value, float):
            value = f"{value:g}"
        elif value is None:
            value = "-"
        typer.echo(f"{key + ':':<26}{value}")


def info(
    path: Annotated[
        str | None,
        typer.Argument(
            help="A checkpoint, run directory or codes file (.vqc); - reads a codes file from stdin. "
            "Default: the default model.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Describe a model or a codes file (--json for machines).

    A model: preset, parameter counts, K, hop, sample rate, steps, speakers, fingerprint. A codes file:
    its header, duration and bitrate.
    """
    from vqconvert.codes import is_codes_file

    try:
        if path == "-" or (path is not None and Path(path).is_file() and is_codes_file(path)):
            data = codes_info(path)
        else:
            data = model_info(_load(path))
    except VQConvertError as err:
        fail(str(err))
    except OSError as err:
        fail(f"{path}: {err.strerror or err}")
    if as_json:
        _print_json(data)
    else:
        _text(data)


def export(
    source: Annotated[str, typer.Argument(help="Checkpoint file or run directory (its latest.pt).")],
    dest: Annotated[Path, typer.Argument(help="Output checkpoint for distribution.")],
    full: Annotated[bool, typer.Option("--full", help="Keep fp32 weights (default: fp16, half the size).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite DEST if it exists.")] = False,
) -> None:
    """Write an inference-only copy of a model: weights, config, speakers, step and metrics.

    The weights are the run's EMA weights when it kept them (--weights-ema), fp16 unless --full; no
    optimizer state. Codes made with either copy are interchangeable (same fingerprint)."""
    from vqconvert.checkpoint import export_checkpoint, fingerprint

    try:
        ckpt, model = export_checkpoint(source, dest, half=not full, force=force)
    except (VQConvertError, OSError) as err:
        fail(str(err))
    size = dest.stat().st_size / 1e6
    print(
        f"{dest}: step {ckpt['step']}, {len(ckpt['speakers'])} speakers, fingerprint {fingerprint(model)}, "
        f"{size:.1f} MB",
        file=sys.stderr,
    )


def register(app: typer.Typer) -> None:
    """Add `speakers`, `info`, `export` to `app`."""
    app.command("speakers")(speakers)
    app.command("info")(info)
    app.command("export")(export)
