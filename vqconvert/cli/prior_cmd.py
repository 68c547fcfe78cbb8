"""`vqconvert train-prior` and `vqconvert sample`: a speaker-conditioned prior over a model's codes, and
speech generated from it (codes sampled by the prior, then decoded by the VQ-VAE's WaveNet)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.cli.common import DeviceOpt, ModelOpt, fail
from vqconvert.cli.enroll_cmd import ThreadsOpt, set_threads
from vqconvert.config import DEFAULT_TEMPERATURE
from vqconvert.prior.train import PriorTrainConfig

D = PriorTrainConfig()
PriorOpt = Annotated[
    Path | None,
    typer.Option("--prior", "-p", help="Prior file. Default: MODEL's name with .prior.pt (beside the model)."),
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]


def _say(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def load_codes(paths: list[str], loaded) -> list:
    """Codes files (.vqc; files, directories, globs) of `loaded`'s model -> Utterances; exit 1 with one
    line for a bad file, a file of another model, or one without a source speaker the model knows."""
    from vqconvert.cli.inputs import collect_inputs
    from vqconvert.codes import EXTENSION, CodesFile
    from vqconvert.errors import VQConvertError
    from vqconvert.prior.train import Utterance

    ins = collect_inputs(paths, None, (EXTENSION,), "codes (.vqc)")
    for src, why in ins.problems:
        fail(f"{src}: {why}")
    utts = []
    for src in ins.files:
        try:
            codes = CodesFile.load(src)
            codes.check_compatible(loaded, src)
        except VQConvertError as err:
            fail(str(err))
        if codes.speaker is None or codes.speaker not in loaded.speakers:
            what = "no source speaker" if codes.speaker is None else f"speaker {codes.speaker!r}, unknown to the model"
            fail(f"{src}: codes record {what}; encode with --speaker NAME")
        if codes.frames:
            utts.append(Utterance(codes.indices.astype("int64"), codes.speaker, str(Path(src).stem)))
    if not utts:
        fail("no codes to train on")
    return utts


def train_prior_cmd(
    codes: Annotated[
        list[str],
        typer.Argument(
            help="Codes files of MODEL (.vqc; files, directories, globs), e.g. from "
            "`vqconvert encode corpus/synth --out-dir codes/synth`.",
            show_default=False,
        ),
    ],
    model: ModelOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Prior file. Default: beside MODEL, NAME.prior.pt.")
    ] = None,
    preset: Annotated[str, typer.Option("--preset", help="Prior size: tiny or small.")] = D.preset,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps (cosine schedule).")] = D.steps,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops per step.")] = D.batch_size,
    seq_frames: Annotated[int, typer.Option("--seq-frames", min=2, help="Codes per crop (250 = 1 s).")] = D.seq_frames,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")] = D.lr,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", min=0.0, max=0.5, help="Utterances held out (hash of the name).")
    ] = D.val_fraction,
    validate_every: Annotated[
        int, typer.Option("--validate-every", min=0, help="0 = only at the end.")
    ] = D.validate_every,
    max_minutes: Annotated[
        float, typer.Option("--max-minutes", min=0.0, help="Stop after this much wall time (0 = no limit).")
    ] = D.max_minutes,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation and crop seed.")] = D.seed,
    threads: ThreadsOpt = 0,
    force: ForceOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Train an autoregressive prior over MODEL's code indices, conditioned on the speaker.

    A GRU over the codes of the utterances (their source speakers, as the codes files record them); the
    held-out utterances give its NLL in bits per code, printed beside log2(K) (a uniform prior) and the
    unigram entropy (a prior without context). The prior file records MODEL's fingerprint; `vqconvert
    sample` refuses it with another model.
    """
    from vqconvert.cli.loading import load_cli_model
    from vqconvert.errors import VQConvertError
    from vqconvert.fileio import check_output
    from vqconvert.prior.model import PRIOR_PRESETS
    from vqconvert.prior.store import default_prior_path, save_prior
    from vqconvert.prior.train import split_utterances, train_prior

    if preset not in PRIOR_PRESETS:
        fail(f"--preset {preset!r}: choose from {', '.join(PRIOR_PRESETS)}", 2)
    set_threads(threads)
    say = _say(quiet)
    loaded = load_cli_model(model, "cpu")
    out = output or default_prior_path(loaded.path)
    try:
        check_output(out, force, " (use --force)")
    except VQConvertError as err:
        fail(str(err))
    utts = load_codes(codes, loaded)
    speakers = sorted({u.speaker for u in utts}, key=loaded.speakers.index)
    train, val = split_utterances(utts, val_fraction)
    say(
        f"train-prior: {len(train)} utterances ({sum(u.codes.size for u in train)} codes) for training, "
        f"{len(val)} held out; {len(speakers)} speakers; K={loaded.config.codebook_size}"
    )
    cfg = PriorTrainConfig(
        preset=preset,
        steps=steps,
        batch_size=batch_size,
        seq_frames=seq_frames,
        lr=lr,
        val_fraction=val_fraction,
        validate_every=validate_every,
        max_minutes=max_minutes,
        seed=seed,
    )
    prior, metrics = train_prior(train, val, speakers, loaded.config.codebook_size, cfg, log=say)
    try:
        if out.exists() and not force:  # appeared while training
            check_output(out, force, " (use --force)")
        save_prior(
            out,
            prior,
            speakers,
            loaded.fingerprint,
            metrics=metrics,
            train={**cfg.to_dict(), "model": str(loaded.path), "inputs": len(utts)},
        )
    except (VQConvertError, OSError) as err:
        fail(f"{out}: cannot write ({err})" if isinstance(err, OSError) else str(err))
    line = f"log2(K) {metrics['log2_k']:.2f}, unigram entropy (train) {metrics['unigram_entropy_train']:.3f} bits"
    if "val_bits_per_code" in metrics:
        line = (
            f"held-out NLL {metrics['val_bits_per_code']:.3f} bits/code ({metrics['val_codes']} codes); "
            f"unigram prior {metrics['val_bits_unigram_prior']:.3f}; " + line
        )
    say(line)
    say(
        f"wrote {out} ({prior.num_parameters():,} parameters, {metrics['steps']} steps, "
        f"{metrics['train_seconds']:.0f} s)"
    )


def sample_cmd(
    speaker: Annotated[str, typer.Option("--speaker", "-s", help="Voice of the generated speech.")],
    output: Annotated[str, typer.Option("--output", "-o", help="WAV file to write (- = stdout).")],
    seconds: Annotated[float, typer.Option("--seconds", min=0.02, max=600.0, help="Length of the speech.")] = 3.0,
    model: ModelOpt = None,
    prior: PriorOpt = None,
    codes_speaker: Annotated[
        str | None,
        typer.Option(
            "--codes-speaker",
            help="Sample the codes as this prior speaker (default: --speaker), "
            "e.g. for a voice added with `vqconvert enroll`.",
        ),
    ] = None,
    prior_temperature: Annotated[
        float, typer.Option("--prior-temperature", min=0.0, help="Temperature of the prior (0 = most likely code).")
    ] = 1.0,
    temperature: Annotated[
        float, typer.Option("--temperature", "-t", min=0.0, help="Sampling temperature of the WaveNet decoder.")
    ] = DEFAULT_TEMPERATURE,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of both samplers.")] = None,
    save_codes: Annotated[
        Path | None, typer.Option("--save-codes", help="Also write the sampled codes to this .vqc file.")
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="Sampler backend of vqconvert.generate.")] = "auto",
    threads: ThreadsOpt = 0,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Generate speech from nothing: sample codes from the prior, then decode them in --speaker's voice.

    The prior (from `vqconvert train-prior`) must have been trained on MODEL's codes. What comes out
    sounds like speech in rhythm and spectrum (the paper, section 4.3: babble without words).
    """
    import torch

    from vqconvert.cli.loading import check_backend, load_cli_model, speaker_index
    from vqconvert.codes import CodesFile
    from vqconvert.decoding import DecodeJob, decode_to_files
    from vqconvert.errors import VQConvertError
    from vqconvert.fileio import check_output
    from vqconvert.prior.store import default_prior_path, load_prior
    from vqconvert.sampling import SamplingOptions

    set_threads(threads)
    check_backend(backend)
    loaded = load_cli_model(model, device)
    spk = speaker_index(loaded, speaker)
    try:
        lp = load_prior(prior or default_prior_path(loaded.path))
        lp.check_model(loaded)
        pspk = lp.speaker_index(codes_speaker or loaded.speakers[spk])
        if output != "-":
            check_output(Path(output), force, " (use --force)")
        if save_codes is not None:
            check_output(save_codes, force, " (use --force)")
        frames = max(1, round(seconds * loaded.config.sample_rate / loaded.config.hop))
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        codes = lp.prior.sample(torch.tensor([pspk]), frames, temperature=prior_temperature, generator=gen)[0]
        if save_codes is not None:
            CodesFile(
                codes.numpy(),
                loaded.config.codebook_size,
                loaded.fingerprint,
                loaded.config.sample_rate,
                loaded.config.hop,
                speaker=loaded.speakers[spk],
                source="vqconvert sample",
            ).save(save_codes, overwrite=force)
        job = DecodeJob(codes, spk, output, frames * loaded.config.hop)
        sampling = SamplingOptions(temperature=temperature, seed=seed, backend=backend)
        for _, err in decode_to_files(loaded.model, [job], sampling, overwrite=force):
            if err is not None:
                raise err
    except VQConvertError as err:
        fail(str(err))
    print(f"sampled {frames} codes ({seconds:g} s) as {speaker}: {output}", file=sys.stderr, flush=True)


def register(app: typer.Typer) -> None:
    """Add `train-prior`, `sample` to `app`."""
    app.command("train-prior")(train_prior_cmd)
    app.command("sample")(sample_cmd)
