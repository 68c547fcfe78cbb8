"""`vqconvert train`: a thin wrapper mapping options 1:1 onto TrainConfig and running the Trainer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.cli.common import DeviceOpt, fail
from vqconvert.config import PRESETS, SAMPLINGS, TrainConfig
from vqconvert.errors import VQConvertError

D = TrainConfig()


def _choice(name: str, value: str, allowed) -> str:
    if value not in allowed:
        fail(f"{name} {value!r}: choose from {', '.join(allowed)}", 2)
    return value


def train(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Corpus roots: VCTK 0.80, VCTK 0.92 or ROOT/<speaker>/*.wav (several are merged).",
            show_default=False,
        ),
    ],
    run_dir: Annotated[
        str, typer.Option("--run-dir", "-o", help="Checkpoints, log.jsonl and speakers.txt go here.")
    ] = D.run_dir,
    preset: Annotated[str, typer.Option("--preset", help=f"Model size: {', '.join(PRESETS)}.")] = D.preset,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Train up to this step.")] = D.steps,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Crops per step (per process).")
    ] = D.batch_size,
    crop_seconds: Annotated[
        float, typer.Option("--crop-seconds", min=0.004, help="Length of each training crop.")
    ] = D.crop_seconds,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")] = D.lr,
    lr_schedule: Annotated[
        str, typer.Option("--lr-schedule", help="cosine or constant (after warmup).")
    ] = D.lr_schedule,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", min=0, help="Linear warmup steps.")] = D.warmup_steps,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation and crop seed.")] = D.seed,
    device: DeviceOpt = D.device,
    amp: Annotated[str, typer.Option("--amp", help="auto (bf16 on CUDA, off on CPU), bf16 or off.")] = D.amp,
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the model.")] = D.compile,
    perturb_semitones: Annotated[
        float,
        typer.Option(
            "--perturb-semitones",
            min=0.0,
            max=12.0,
            help="Pitch-shift the encoder's input by up to this many semitones (0 = off) so that speaker "
            "identity comes from the speaker embedding, not the codes.",
        ),
    ] = D.perturb_semitones,
    sample_by: Annotated[
        str,
        typer.Option(
            "--sample-by",
            help="utterance: each clip once a pass; duration: clips in proportion to their length (for "
            "corpora of few long clips beside many short ones).",
        ),
    ] = D.sample_by,
    prev_noise: Annotated[
        float,
        typer.Option(
            "--prev-noise",
            min=0.0,
            help="Noise on the decoder's previous-sample input: std up to this many mu-law steps per crop "
            "(0 = off), against the exposure bias of free-running generation.",
        ),
    ] = D.prev_noise,
    true_mel: Annotated[
        float,
        typer.Option(
            "--true-mel",
            min=0.0,
            max=1.0,
            help="Mel-conditioned presets: share of crops whose WaveNet reads the true log-mel instead of the "
            "predicted one (0 = always the prediction).",
        ),
    ] = D.true_mel,
    codes_from: Annotated[
        str | None,
        typer.Option(
            "--codes-from",
            help="Copy this model's encoder and codebook and freeze them: train only a new decoder for its "
            "codes (same fingerprint, so its codes files decode with the new model).",
        ),
    ] = None,
    enc_shift: Annotated[
        int, typer.Option("--enc-shift", min=0, help="Shift the encoder's input by up to N samples (0 = off).")
    ] = D.enc_shift,
    enc_gain_db: Annotated[
        float, typer.Option("--enc-gain-db", min=0.0, help="Random gain of the encoder's input, +-dB (0 = off).")
    ] = D.enc_gain_db,
    enc_noise_snr: Annotated[
        float,
        typer.Option(
            "--enc-noise-snr", min=0.0, help="White noise on the encoder's input at SNR U(x, x+30) dB (0 = off)."
        ),
    ] = D.enc_noise_snr,
    weights_ema: Annotated[
        float,
        typer.Option(
            "--weights-ema", min=0.0, max=0.99999, help="Keep an EMA of the weights with this decay (e.g. 0.999; "
            "0 = off); validation, probes, export and inference use it."
        ),
    ] = D.weights_ema,
    probe: Annotated[
        list[str] | None,
        typer.Option(
            "--probe",
            help="Held-out utterance id or glob whose free-running reconstruction is measured every "
            "--probe-every steps (WER, STOI, log-mel L1; repeatable; never trained on).",
        ),
    ] = None,
    probe_every: Annotated[
        int, typer.Option("--probe-every", min=0, help="Measure the --probe clips every N steps (0 = never).")
    ] = D.probe_every,
    probe_seconds: Annotated[
        float, typer.Option("--probe-seconds", min=0.1, help="Use at most this much of each probe clip.")
    ] = D.probe_seconds,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", min=1, help="Save latest.pt every N steps.")
    ] = D.checkpoint_every,
    keep_every: Annotated[
        int, typer.Option("--keep-every", min=0, help="Also keep step_NNNNNNN.pt every N steps (0 = never).")
    ] = D.keep_every,
    validate_every: Annotated[
        int, typer.Option("--validate-every", min=0, help="Validate every N steps (0 = never).")
    ] = D.validate_every,
    val_fraction: Annotated[
        float,
        typer.Option("--val-fraction", min=0.0, max=0.99, help="Share of utterances held out for validation."),
    ] = D.val_fraction,
    holdout: Annotated[
        list[str] | None,
        typer.Option("--holdout", help="Utterance id or glob always kept for validation (repeatable)."),
    ] = None,
    cache_dir: Annotated[str, typer.Option("--cache-dir", help="Where the decoded audio cache lives.")] = D.cache_dir,
    ema: Annotated[
        bool, typer.Option("--ema/--no-ema", help="EMA codebook updates instead of the codebook loss.")
    ] = D.ema,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="CPU threads for torch (default: cores / processes)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from RUN_DIR/latest.pt.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Start afresh in a RUN_DIR that holds a run (replaces its files).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or log lines on stderr.")] = False,
) -> None:
    """Train a VQ-VAE on one or more corpora; resumable (--resume) and safe to stop with Ctrl-C."""

    from vqconvert.train import Trainer

    _choice("--preset", preset, PRESETS)
    _choice("--lr-schedule", lr_schedule, ("cosine", "constant"))
    _choice("--sample-by", sample_by, SAMPLINGS)
    _choice("--amp", amp, ("auto", "bf16", "off"))
    if true_mel > 0 and PRESETS[preset].mel_cond_blocks <= 0:
        fail(f"--true-mel needs a mel-conditioned preset (e.g. small-melcond), not {preset}")
    cfg = TrainConfig(
        data=tuple(str(d) for d in data),
        run_dir=run_dir,
        preset=preset,
        steps=steps,
        batch_size=batch_size,
        crop_seconds=crop_seconds,
        lr=lr,
        lr_schedule=lr_schedule,
        warmup_steps=warmup_steps,
        seed=seed,
        device=device,
        amp=amp,
        compile=compile,
        perturb_semitones=perturb_semitones,
        sample_by=sample_by,
        prev_noise=prev_noise,
        true_mel=true_mel,
        codes_from=codes_from or "",
        enc_shift=enc_shift,
        enc_gain_db=enc_gain_db,
        enc_noise_snr=enc_noise_snr,
        weights_ema=weights_ema,
        probe=tuple(probe or ()),
        probe_every=probe_every,
        probe_seconds=probe_seconds,
        checkpoint_every=checkpoint_every,
        keep_every=keep_every,
        validate_every=validate_every,
        val_fraction=val_fraction,
        holdout=tuple(holdout or ()),
        cache_dir=cache_dir,
        ema=ema,
        threads=threads or 0,
    )

    def log(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        trainer = Trainer(cfg, resume=resume, log=log, progress=not quiet, force=force)
        step = trainer.run()
    except VQConvertError as err:
        fail(str(err))
    except ValueError as err:  # a config value the data layer refuses (e.g. crop length)
        fail(str(err))
    log(f"step {step}: checkpoint {Path(run_dir) / 'latest.pt'}")


def register(app: typer.Typer) -> None:
    """Add `train` to `app`."""
    app.command("train")(train)
