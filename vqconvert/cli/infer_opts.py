"""Options, conventions and formats shared by `vqconvert encode | decode | transfer`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

InputsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Files, directories (recursive), globs, or - for one file on stdin.", show_default=False),
]
OutOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", help="Output file for a single input (- = stdout). Default: beside the input."),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option("--out-dir", help="Write outputs under DIR, mirroring the input paths relative to their common root."),
]
FromListOpt = Annotated[
    str | None,
    typer.Option(
        "--from-list",
        help="Read input paths from FILE, one per line, relative to the current directory (- = stdin).",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary (errors still print).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Utterances generated together.")]
TempOpt = Annotated[float, typer.Option("--temperature", "-t", min=0.0, help="Sampling temperature.")]
GreedyOpt = Annotated[bool, typer.Option("--greedy", help="Take the most likely sample at each step (no sampling).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Sampling seed (same seed and batch size -> same audio).")]
RateOpt = Annotated[
    int | None, typer.Option("--sample-rate", "-r", min=1000, help="Resample the output to this rate (Hz).")
]
BackendOpt = Annotated[str, typer.Option("--backend", help="Sampler backend of vqconvert.generate (auto picks).")]
VocoderOpt = Annotated[
    str,
    typer.Option(
        "--vocoder",
        help="wavenet: the model's decoder (the paper's). griffin-lim: fast, rendered from the log-mel of the "
        "mel net beside the model (NAME.mel.pt, from `vqconvert train-mel`) or --mel-net, else of the model's "
        "mel head (e.g. preset small-cond); sampling options do not apply.",
    ),
]
MelNetOpt = Annotated[
    Path | None,
    typer.Option("--mel-net", help="Mel net file for --vocoder griffin-lim. Default: NAME.mel.pt beside the model."),
]
ChunkOpt = Annotated[
    float,
    typer.Option(
        "--chunk-seconds",
        min=0.01,
        help="Encode long audio this many seconds at a time (with overlap: same codes as in one piece).",
    ),
]


CONVENTIONS = (
    "Inputs: files, directories (recursive), globs (also quoted ones), - for one file on stdin, "
    "--from-list FILE (one path a line, relative to the current directory; - = stdin).\n\n"
    "Outputs: beside each input with the new extension; --out-dir DIR mirrors the input paths relative to "
    "their common root; -o OUT only for a single input (- = stdout). Existing outputs are kept unless "
    "--force; an output equal to its input is refused. Writes are atomic.\n\n"
    "Progress and the summary go to stderr; each failed file prints one line 'error: <file>: <reason>' and "
    "the rest still run. Exit status: 0 all ok, 1 any file failed (or the model or a speaker is unusable), "
    "2 usage error (e.g. -o with several inputs)."
)


class CodesFormat(str, Enum):
    binary = "binary"
    text = "text"
