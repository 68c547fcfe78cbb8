"""`vqconvert enroll`: add a new voice to a model from a few clips (only its speaker embedding is fitted)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.cli.common import DeviceOpt, ModelOpt, fail, resolve_device
from vqconvert.enroll import EnrollConfig

D = EnrollConfig()

ThreadsOpt = Annotated[
    int,
    typer.Option("--threads", min=0, help="CPU threads for torch (0 = torch's default; 1 on a busy machine)."),
]


def set_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def read_clips(paths: list[str], sample_rate: int) -> list:
    """Every clip as float32 audio, or exit 1 with `error: <file>: <reason>` for the first bad one."""
    from vqconvert.audio import AUDIO_EXTENSIONS, load_audio
    from vqconvert.cli.inputs import collect_inputs
    from vqconvert.errors import VQConvertError

    ins = collect_inputs(paths, None, AUDIO_EXTENSIONS, "audio")
    for src, why in ins.problems:
        fail(f"{src}: {why}")
    if not ins.files:
        fail("no clips given", 2)
    clips = []
    for src in ins.files:
        try:
            audio = load_audio(src, sample_rate)
        except VQConvertError as err:
            fail(str(err) if str(err).startswith(str(src)) else f"{src}: {err}")
        if audio.size == 0:
            fail(f"{src}: holds no audio")
        clips.append(audio)
    return clips


def enroll_cmd(
    clips: Annotated[
        list[str],
        typer.Argument(help="Clips of the new voice: files, directories (recursive), globs.", show_default=False),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Speaker name of the new voice (must be new).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The new checkpoint (.pt).")],
    model: ModelOpt = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimisation steps on the new embedding.")] = D.steps,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate of the embedding.")] = D.lr,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops per step.")] = D.batch_size,
    crop_seconds: Annotated[
        float, typer.Option("--crop-seconds", min=0.016, help="Length of each crop (shortened to the shortest clip).")
    ] = D.crop_seconds,
    seed: Annotated[int, typer.Option("--seed", help="Crop seed.")] = D.seed,
    threads: ThreadsOpt = 0,
    device: DeviceOpt = "auto",
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Enrol a voice the model has not heard: fit one new speaker embedding on a few clips, all else frozen.

    The encoder, codebook and decoder weights stay as they are (the model's fingerprint too, so codes
    files made with MODEL decode with the new one); NEW.pt is MODEL with NAME added as its last speaker.
    A few tens of seconds of speech are enough; each step costs about a second of CPU per crop-second.
    Then: vqconvert transfer x.wav -m NEW.pt --speaker NAME.
    """
    import torch

    from vqconvert.checkpoint import build_model, fingerprint, load_checkpoint, resolve_model_path, save_checkpoint
    from vqconvert.enroll import check_new_name, enroll
    from vqconvert.errors import VQConvertError
    from vqconvert.fileio import atomic_output, check_output
    from vqconvert.shipped import default_model

    set_threads(threads)
    dev = resolve_device(device)
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        check_output(output, force, " (use --force)")
        src = resolve_model_path(model if model is not None else default_model())
        ckpt = load_checkpoint(src)
        base = build_model(ckpt).to(dev).eval()
        speakers = list(ckpt["speakers"])
        try:
            check_new_name(name, speakers)
        except ValueError as err:
            fail(str(err))
        audio = read_clips(clips, base.cfg.sample_rate)
        cfg = EnrollConfig(steps=steps, lr=lr, batch_size=batch_size, crop_seconds=crop_seconds, seed=seed)
        result = enroll(base, speakers, audio, cfg, log=say)
        if fingerprint(result.model) != fingerprint(base):  # the encoder and codebook must be untouched
            fail("internal error: enrolment changed the encoder or codebook")
        half = any(v.dtype == torch.float16 for v in ckpt["model"].values())
        metrics = dict(ckpt.get("metrics") or {})
        enrolled = list(metrics.get("enrolled", []))
        enrolled.append(result.summary(name, cfg))
        metrics["enrolled"] = enrolled
        with atomic_output(output, overwrite=force, hint=" (use --force)") as tmp:
            save_checkpoint(
                tmp,
                result.model.cpu(),
                speakers + [name],
                step=int(ckpt["step"]),
                train_config=ckpt.get("train_config"),
                metrics=metrics,
                half=half,
            )
    except VQConvertError as err:
        fail(str(err))
    say(f"wrote {output}: {len(speakers) + 1} speakers, {name!r} is index {result.index}")


def register(app: typer.Typer) -> None:
    """Add `enroll` to `app`."""
    app.command("enroll")(enroll_cmd)
