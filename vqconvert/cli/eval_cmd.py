"""`vqconvert evaluate`: reconstruction, codebook, voice-transfer and intelligibility metrics of a model
on held-out utterances (the measuring itself is `vqconvert.evaluation`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from vqconvert.cli.common import DeviceOpt, ModelOpt, console, fail, resolve_device
from vqconvert.cli.infer_opts import MelNetOpt, VocoderOpt
from vqconvert.errors import VQConvertError
from vqconvert.evaluation.options import EvalOptions

D = EvalOptions()  # every default of the command


def _split_list(values: list[str] | None) -> tuple[str, ...]:
    """Repeated options, each possibly comma-separated -> one tuple without repeats."""
    out: list[str] = []
    for v in values or []:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return tuple(dict.fromkeys(out))


# -- the command --------------------------------------------------------------------------------------


def evaluate_cmd(
    data: Annotated[
        list[str] | None,
        typer.Argument(
            help="Corpus directories (VCTK or <speaker>/*.wav). Default: the corpora the model "
            "was trained on (its train_config).",
            show_default=False,
        ),
    ] = None,
    model: ModelOpt = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="val: the validation split the model was trained with (from its "
            "val_fraction and holdout); all: every utterance.",
        ),
    ] = D.split,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Utterances to evaluate (0 = all).")] = D.limit,
    max_seconds: Annotated[
        float,
        typer.Option(
            "--max-seconds",
            min=0.01,
            help="Crop each utterance (after trimming silence) to this; WER counts only utterances that fit whole.",
        ),
    ] = D.max_seconds,
    targets: Annotated[
        list[str] | None,
        typer.Option(
            "--targets",
            "--target",
            "-t",
            help="Target voices (repeat, or comma-separated). "
            "Default: 3 of the model's speakers spread over its speaker table.",
        ),
    ] = None,
    sources: Annotated[
        list[str] | None,
        typer.Option("--sources", help="Only utterances of these source speakers (repeat or comma-separated)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            help="Save inputs, reconstructions and conversions as WAV (SPEAKER/UTT.*.wav, "
            "overwriting) and results.json here.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Sampling seed.")] = D.sampling.seed,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, help="Sampling temperature.")
    ] = D.sampling.temperature,
    greedy: Annotated[bool, typer.Option("--greedy", help="Argmax sampling.")] = D.sampling.greedy,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Clips generated together.")
    ] = D.batch_size,
    backend: Annotated[
        str, typer.Option("--backend", help="Generator backend (auto, c, torch, cuda).")
    ] = D.sampling.backend,
    references: Annotated[
        int,
        typer.Option("--references", min=1, help="Real utterances per speaker for the speaker judge's centroids."),
    ] = D.reference_utterances,
    judge_data: Annotated[
        list[Path] | None,
        typer.Option(
            "--judge-data",
            help="Corpora (beside DATA) whose speakers the speaker judge chooses among (repeat). "
            "Default: the model's training corpora found here. Fix it to compare models trained on "
            "different corpora with the same judge.",
            show_default=False,
        ),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            "--skip",
            help="Metrics to leave out: nll, mcd, stoi, pesq, speaker, asr (repeat or comma-separated).",
        ),
    ] = None,
    require_all: Annotated[
        bool,
        typer.Option("--require-all", help="Fail when a judge's package is missing instead of skipping it."),
    ] = D.require_all,
    mic: Annotated[str, typer.Option("--mic", help="VCTK 0.92 microphone.")] = D.mic,
    vocoder: VocoderOpt = D.vocoder,
    mel_net: MelNetOpt = None,
    device: DeviceOpt = "auto",
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=0,
            help="CPU threads for torch (0 = torch's default). On a busy machine 1 is often fastest.",
        ),
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress (warnings still print).")] = False,
) -> None:
    r"""Evaluate a model on held-out utterances: reconstruction, codebook use, voice transfer, WER.

    Reconstruction: teacher-forced NLL (bits/sample), and STOI, PESQ-WB and DTW mel-cepstral distortion
    of audio decoded in the source voice. Codebook: codes used of K, perplexity, bitrate (nominal and
    entropy-coded). Transfer: each utterance converted to each --targets voice, judged by resemblyzer
    speaker embeddings (nearest centroid among the model's speakers with real audio in the data;
    similarity to target vs source); each accuracy is shown with the judge's chance level and the
    speakers it picks for white and pink noise. Intelligibility: pocketsphinx WER of source,
    reconstructed and converted audio against the transcripts, per voice.

    The judges come with the eval extra: pip install 'vqconvert\[eval]'. A missing one is skipped with a
    note (--require-all: an error). The table (or --json) goes to stdout, progress to stderr. Generation
    is slow on CPU: keep --limit and --max-seconds small.
    """
    from vqconvert.cli.loading import check_backend, check_mel_speakers, check_vocoder, load_cli_model
    from vqconvert.devices import judge_device
    from vqconvert.evaluation.runner import Evaluator

    check_backend(backend)  # a usage error (exit 2), as for decode and transfer
    sampling = D.sampling.replace(seed=seed, temperature=temperature, greedy=greedy, backend=backend)
    for root in judge_data or []:
        if not root.is_dir():
            fail(f"--judge-data {root}: not a directory")
    opts = EvalOptions(
        split=split,
        limit=limit,
        max_seconds=max_seconds,
        targets=_split_list(targets),
        sources=_split_list(sources),
        sampling=sampling,
        batch_size=batch_size,
        reference_utterances=references,
        reference_roots=None if judge_data is None else tuple(str(r) for r in judge_data),
        skip=_split_list(skip),
        require_all=require_all,
        out_dir=out_dir,
        mic=mic,
    )
    if threads:
        import torch

        torch.set_num_threads(threads)
    dev = resolve_device(device)
    opts.judge_device = judge_device(dev)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            fail(f"--out-dir {out_dir}: cannot create it ({err.strerror or err})")
    loaded = load_cli_model(model, dev)
    opts.vocoder, opts.mel_net = vocoder, check_vocoder(loaded, vocoder, mel_net)
    named = []
    for t in opts.targets:
        try:
            named.append(loaded.speaker_index(t))
        except VQConvertError:
            pass  # the evaluation reports an unknown target itself
    check_mel_speakers(opts.mel_net, loaded, named)

    def log(msg: str) -> None:
        if msg.startswith(("warning:", "note:")) or not quiet:
            console.print(msg, markup=False, highlight=False, soft_wrap=True)

    with _Progress(quiet) as progress:
        try:
            result = Evaluator(loaded, data or [], opts, log=log, progress=progress.update).run()
        except VQConvertError as err:
            progress.stop()
            fail(str(err))
    text = json.dumps(result, indent=2)
    if out_dir is not None:
        (out_dir / "results.json").write_text(text + "\n", encoding="utf-8")
    if as_json:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    from rich.console import Console

    out = Console(file=sys.stdout, highlight=False, width=max(150, Console(file=sys.stdout).width))
    from vqconvert.cli.eval_table import render

    for r in render(result):
        out.print(r)


class _Progress:
    """A transient rich progress bar per stage (generate, references, asr) on a terminal stderr."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=quiet or not console.is_terminal,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def stop(self) -> None:
        self.progress.stop()

    def update(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done, total=total)


def register(app: typer.Typer) -> None:
    """Add `evaluate` to `app`."""
    app.command("evaluate")(evaluate_cmd)
