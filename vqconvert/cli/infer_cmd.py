"""`vqconvert encode | decode | transfer`: batch inference over files, directories, globs and lists.

Conventions shared by the three commands (also in their --help):

* Inputs: files, directories (searched recursively; hidden entries skipped), globs (expanded here too,
  so quoted globs work), `-` (the input file itself on stdin), and `--from-list FILE` (one path per
  line, `-` = stdin; blank lines and `#` comments skipped).
* Outputs go beside each input with a new extension (`x.wav -> x.vqc`, `x.vqc -> x.wav`,
  `x.wav -> x.<speaker>.wav`), or under `--out-dir DIR` mirroring the input paths relative to their
  common root, or to `-o OUT` for a single input (`-o -` = stdout). Existing outputs are kept unless
  `--force`; an output that is its own input is always refused. Every write is atomic.
* Progress and a summary line ("3 files: 3 ok, 0 failed") go to stderr. A file that fails prints one
  line `error: <file>: <reason>` and the others still run. Exit 0 when all succeed, 1 when any failed
  (or the model / a speaker is unusable), 2 for usage errors.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vqconvert.audio import AUDIO_EXTENSIONS
from vqconvert.cli.common import DeviceOpt, ModelOpt, fail
from vqconvert.cli.decoding import decode_files
from vqconvert.cli.infer_opts import (
    CONVENTIONS,
    BackendOpt,
    BatchOpt,
    ChunkOpt,
    CodesFormat,
    ForceOpt,
    FromListOpt,
    GreedyOpt,
    InputsArg,
    MelNetOpt,
    OutDirOpt,
    OutOpt,
    QuietOpt,
    RateOpt,
    SeedOpt,
    TempOpt,
    VocoderOpt,
)
from vqconvert.cli.inputs import Planner, check_usage, collect_inputs, common_root, display, output_path
from vqconvert.cli.loading import check_backend, check_mel_speakers, check_vocoder, load_cli_model, speaker_index
from vqconvert.cli.report import Report, usage_errors
from vqconvert.codes import EXTENSION as CODES_EXT
from vqconvert.errors import VQConvertError
from vqconvert.fileio import ensure_parent, safe_name
from vqconvert.sampling import SamplingOptions

S = SamplingOptions()  # the sampling defaults of decode and transfer


def register(app: typer.Typer) -> None:
    """Add `encode`, `decode` and `transfer` to `app`."""
    app.command("encode", epilog=CONVENTIONS)(encode)
    app.command("decode", epilog=CONVENTIONS)(decode)
    app.command("transfer", epilog=CONVENTIONS)(transfer)


# -- encode -------------------------------------------------------------------------------------------


def encode(
    inputs: InputsArg = None,
    output: OutOpt = None,
    out_dir: OutDirOpt = None,
    from_list: FromListOpt = None,
    force: ForceOpt = False,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    fmt: Annotated[
        CodesFormat,
        typer.Option(
            "--format",
            help="binary: a .vqc file per input. text: print each file's indices to "
            "stdout as whitespace-separated integers, one line per file (no line for a failed file).",
        ),
    ] = CodesFormat.binary,
    speaker: Annotated[
        str | None,
        typer.Option(
            "--speaker",
            "-s",
            help="Record this source speaker in the codes (default: the corpus "
            "directory or file-name prefix when it is one of the model's speakers).",
        ),
    ] = None,
    chunk_seconds: ChunkOpt = 10.0,
    quiet: QuietOpt = False,
) -> None:
    """Encode audio into discrete codes (.vqc files).

    250 frames/s of indices into the model's codebook: 2,250 bit/s for K=512. x.wav -> x.vqc beside the
    input, unless -o/--out-dir. Audio of any rate and channel count is downmixed and resampled to 16 kHz,
    then padded at the end to a multiple of 64 samples. Long files are encoded in overlapping chunks
    that give the same codes as one piece.
    """
    from vqconvert.codes import CodesFile
    from vqconvert.inference import chunk_frames_for, encode_file

    with usage_errors():
        ins = collect_inputs(inputs or [], from_list, AUDIO_EXTENSIONS, "audio")
        if fmt is CodesFormat.text and (output is not None or out_dir is not None):
            fail("--format text prints to stdout; it takes no -o/--out-dir (redirect stdout instead)", 2)
        check_usage(ins, output, out_dir)
        loaded = load_cli_model(model, device)
        root = common_root(ins.roots)
        chunk_frames = chunk_frames_for(loaded, chunk_seconds)
        planner = Planner(force)
        with Report(len(ins.files) + len(ins.problems), "encode", quiet) as report:
            for src, why in ins.problems:
                report.done(src, why)
            for src in ins.files:
                name = display(src)
                report.current(name)
                try:
                    dst = None
                    if fmt is CodesFormat.binary:
                        dst = output_path(src, CODES_EXT, output, out_dir, root)
                        planner.check(src, dst)
                    codes: CodesFile = encode_file(loaded, src, speaker=speaker, chunk_frames=chunk_frames)
                    if dst is None:
                        sys.stdout.write(" ".join(map(str, codes.indices.tolist())) + "\n")
                        sys.stdout.flush()
                    else:
                        ensure_parent(dst)
                        codes.save(dst, overwrite=force)
                except Exception as err:  # noqa: BLE001 - one failed file must not stop the others
                    report.done(name, err)
                else:
                    report.done(name)
        report.finish()


# -- decode and transfer ------------------------------------------------------------------------------


def decode(
    inputs: InputsArg = None,
    output: OutOpt = None,
    out_dir: OutDirOpt = None,
    from_list: FromListOpt = None,
    force: ForceOpt = False,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    speaker: Annotated[
        str | None,
        typer.Option(
            "--speaker",
            "-s",
            help="Voice to decode in (name or index). Default: the source speaker "
            "recorded in each codes file, when the model knows it.",
        ),
    ] = None,
    batch_size: BatchOpt = 1,
    temperature: TempOpt = S.temperature,
    greedy: GreedyOpt = S.greedy,
    seed: SeedOpt = S.seed,
    sample_rate: RateOpt = None,
    backend: BackendOpt = S.backend,
    vocoder: VocoderOpt = "wavenet",
    mel_net: MelNetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Decode codes files (.vqc) into speech, in any voice.

    x.vqc -> x.wav beside the input, unless -o/--out-dir. The codes must come from this model (same
    fingerprint). The voice is --speaker, else the source speaker recorded in the codes. Audio is
    streamed to disk as it is generated (16-bit WAV, atomic); --batch-size generates several files
    together.
    """
    from vqconvert.codes import CodesFile
    from vqconvert.inference import decode_speaker

    with usage_errors():
        ins = collect_inputs(inputs or [], from_list, (CODES_EXT,), "codes (.vqc)")
        check_usage(ins, output, out_dir)
        check_backend(backend)
        loaded = load_cli_model(model, device)
        mel = check_vocoder(loaded, vocoder, mel_net)
        if speaker is not None:
            check_mel_speakers(mel, loaded, [speaker_index(loaded, speaker)])  # fails the command, not each file
        root = common_root(ins.roots)
        planner = Planner(force)

        def jobs_for(src: str, name: str, report: Report) -> list[tuple]:
            dst = output_path(src, ".wav", output, out_dir, root)
            planner.check(src, dst)
            codes = CodesFile.load(src)
            codes.check_compatible(loaded)
            spk = decode_speaker(loaded, codes, speaker)
            if mel is not None:
                mel.check_speaker(spk)
            if codes.frames == 0:
                raise VQConvertError("the codes file holds no frames")
            return [(codes.tensor(), spk, dst, codes.samples)]

        sampling = S.replace(temperature=temperature, greedy=greedy, seed=seed, backend=backend)
        decode_files(
            loaded,
            ins,
            "decode",
            quiet,
            jobs_for,
            sampling,
            batch_size=batch_size,
            force=force,
            sample_rate=sample_rate,
            vocoder=vocoder,
            mel_net=None if mel is None else mel.net,
        )


def transfer(
    inputs: InputsArg = None,
    speaker: Annotated[
        list[str] | None,
        typer.Option(
            "--speaker",
            "-s",
            help="Target voice (name or index); repeat for several targets: one "
            "output per target, x.wav -> x.<speaker>.wav.",
        ),
    ] = None,
    output: OutOpt = None,
    out_dir: OutDirOpt = None,
    from_list: FromListOpt = None,
    force: ForceOpt = False,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 1,
    temperature: TempOpt = S.temperature,
    greedy: GreedyOpt = S.greedy,
    seed: SeedOpt = S.seed,
    sample_rate: RateOpt = None,
    backend: BackendOpt = S.backend,
    vocoder: VocoderOpt = "wavenet",
    mel_net: MelNetOpt = None,
    chunk_seconds: ChunkOpt = 10.0,
    quiet: QuietOpt = False,
) -> None:
    """Convert voices: encode each audio file and decode it in each --speaker's voice.

    x.wav -> x.<speaker>.wav beside the input (one output per target), unless -o (one input, one
    speaker) or --out-dir. The output keeps the input's length, at 16 kHz or --sample-rate.
    """
    from vqconvert.inference import chunk_frames_for, load_and_encode, transfer_targets

    if not speaker:
        fail("give at least one target voice with --speaker NAME (see `vqconvert speakers`)", 2)
    with usage_errors():
        ins = collect_inputs(inputs or [], from_list, AUDIO_EXTENSIONS, "audio")
        check_usage(ins, output, out_dir, outputs_per_file=len(speaker))
        check_backend(backend)
        loaded = load_cli_model(model, device)
        mel = check_vocoder(loaded, vocoder, mel_net)
        targets = transfer_targets(loaded, speaker)  # an unknown voice: one line, exit 1
        check_mel_speakers(mel, loaded, [spk for _, spk in targets])
        chunk_frames = chunk_frames_for(loaded, chunk_seconds)
        root = common_root(ins.roots)
        planner = Planner(force)

        def jobs_for(src: str, name: str, report: Report) -> list[tuple]:
            planned = []
            for label, spk in targets:
                dst = output_path(src, f".{safe_name(label, 'speaker')}.wav", output, out_dir, root)
                planner.check(src, dst)
                planned.append((spk, dst))
            report.current(name)
            codes, samples = load_and_encode(loaded, src, chunk_frames=chunk_frames)
            return [(codes, spk, dst, samples) for spk, dst in planned]

        sampling = S.replace(temperature=temperature, greedy=greedy, seed=seed, backend=backend)
        decode_files(
            loaded,
            ins,
            "transfer",
            quiet,
            jobs_for,
            sampling,
            batch_size=batch_size,
            force=force,
            sample_rate=sample_rate,
            vocoder=vocoder,
            mel_net=None if mel is None else mel.net,
        )
