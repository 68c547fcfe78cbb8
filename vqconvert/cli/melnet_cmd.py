"""`vqconvert train-mel`: a mel net for a model's codes (vqconvert.melnet), the words path of
`--vocoder griffin-lim`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.cli.common import DeviceOpt, ModelOpt, fail, resolve_device
from vqconvert.cli.enroll_cmd import ThreadsOpt, set_threads
from vqconvert.melnet.train import MelTrainConfig

D = MelTrainConfig()


def train_mel_cmd(
    data: Annotated[
        list[Path],
        typer.Argument(help="Corpus roots with speakers MODEL knows (as for `vqconvert train`).", show_default=False),
    ],
    model: ModelOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Mel net file. Default: beside MODEL, NAME.mel.pt.")
    ] = None,
    preset: Annotated[str, typer.Option("--preset", help="Size: tiny, small or large.")] = D.preset,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps (cosine schedule).")] = D.steps,
    max_minutes: Annotated[
        float,
        typer.Option(
            "--max-minutes", min=0.0, help="Stop after this much training time; the cosine ends there (0 = none)."
        ),
    ] = D.max_minutes,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops per step.")] = D.batch_size,
    crop_frames: Annotated[
        int, typer.Option("--crop-frames", min=8, help="Codes per crop (250 = 1 s).")
    ] = D.crop_frames,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")] = D.lr,
    delta_weight: Annotated[
        float,
        typer.Option(
            "--delta-weight", min=0.0, help="Add this x the L1 of time and frequency differences (sharper log-mels)."
        ),
    ] = D.delta_weight,
    copies: Annotated[
        int, typer.Option("--copies", min=0, help="Pitch-shifted encodings of each utterance besides the original.")
    ] = D.copies,
    perturb_semitones: Annotated[
        float,
        typer.Option(
            "--perturb-semitones", min=0.0, max=12.0, help="Shift of those copies: up to this many semitones."
        ),
    ] = D.perturb_semitones,
    holdout: Annotated[
        list[str] | None, typer.Option("--holdout", help="Also hold out these utterance ids or globs (repeatable).")
    ] = None,
    validate_every: Annotated[
        int, typer.Option("--validate-every", min=0, help="0 = only at the end.")
    ] = D.validate_every,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation, crop and perturbation seed.")] = D.seed,
    cache_dir: Annotated[str, typer.Option("--cache-dir", help="Audio cache and encoded codes live here.")] = "cache",
    threads: ThreadsOpt = 0,
    device: DeviceOpt = "auto",
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Train a mel net on MODEL's frozen codes: codes + speaker -> log-mel, for `--vocoder griffin-lim`.

    The corpus is encoded by MODEL once (kept in --cache-dir), as it is and pitch-shifted, and the net
    learns the unshifted log-mel with an L1 loss; MODEL's own validation and held-out utterances stay held
    out and give the held-out L1 and the speaker gain. Decoding with `--vocoder griffin-lim` uses the mel
    net beside the model (NAME.mel.pt) when there is one. MODEL itself is not changed.
    """
    from vqconvert.cli.loading import load_cli_model
    from vqconvert.errors import VQConvertError
    from vqconvert.fileio import check_output
    from vqconvert.melnet.data import load_corpus
    from vqconvert.melnet.model import MELNET_PRESETS
    from vqconvert.melnet.store import default_melnet_path, save_melnet
    from vqconvert.melnet.train import train_melnet

    if preset not in MELNET_PRESETS:
        fail(f"--preset {preset!r}: choose from {', '.join(MELNET_PRESETS)}", 2)
    set_threads(threads)
    say = (lambda _m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    dev = resolve_device(device)
    loaded = load_cli_model(model, dev)
    out = output or default_melnet_path(loaded.path)
    cfg = MelTrainConfig(
        preset=preset,
        steps=steps,
        max_minutes=max_minutes,
        batch_size=batch_size,
        crop_frames=crop_frames,
        lr=lr,
        delta_weight=delta_weight,
        copies=copies,
        perturb_semitones=perturb_semitones,
        validate_every=validate_every,
        seed=seed,
    )
    try:
        check_output(out, force, " (use --force)")
        train, val, trained = load_corpus(loaded, [str(d) for d in data], cache_dir, cfg, holdout or (), say, not quiet)
    except VQConvertError as err:
        fail(str(err))
    if not train:
        fail("no utterances of speakers the model knows in DATA")
    frames = sum(u.mel.shape[1] for u in train)
    say(
        f"train-mel: {len(train)} utterances ({frames / 250 / 3600:.2f} h) for training, {len(val)} held out; "
        f"{len(trained)} speakers"
    )
    net, metrics = train_melnet(train, val, loaded.config.codebook_size, len(loaded.speakers), cfg, log=say, device=dev)
    try:
        if out.exists() and not force:  # appeared while training
            check_output(out, force, " (use --force)")
        save_melnet(
            out,
            net,
            list(loaded.speakers),
            trained,
            loaded.fingerprint,
            metrics=metrics,
            train={
                **cfg.to_dict(),
                "model": str(loaded.path),
                "data": [str(d) for d in data],
                "holdout": list(holdout or ()),
            },
        )
    except (VQConvertError, OSError) as err:
        fail(f"{out}: cannot write ({err})" if isinstance(err, OSError) else str(err))
    say(f"wrote {out} ({net.num_parameters():,} parameters, {metrics['steps']} steps, {metrics['seconds']:.0f} s)")


def register(app: typer.Typer) -> None:
    """Add `train-mel` to `app`."""
    app.command("train-mel")(train_mel_cmd)
