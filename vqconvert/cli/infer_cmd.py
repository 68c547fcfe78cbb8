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

import glob
import os
import re
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vqconvert.audio import AUDIO_EXTENSIONS
from vqconvert.cli import app
from vqconvert.cli.common import DeviceOpt, ModelOpt, console, fail, resolve_device
from vqconvert.codes import EXTENSION as CODES_EXT
from vqconvert.errors import CheckpointError, OutputError, VQConvertError

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel

STDIN = "-"
_GLOB = re.compile(r"[*?[]")

# -- options shared by the commands -------------------------------------------------------------------

InputsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Files, directories (recursive), globs, or - for one file on stdin.", show_default=False
    ),
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--output", "-o", help="Output file for a single input (- = stdout). Default: beside the input."
    ),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--out-dir", help="Write outputs under DIR, mirroring the input paths relative to their common root."
    ),
]
FromListOpt = Annotated[
    str | None,
    typer.Option(
        "--from-list",
        help="Read input paths from FILE, one per line, relative to the current directory (- = stdin).",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar or summary (errors still print).")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Utterances generated together.")]
TempOpt = Annotated[float, typer.Option("--temperature", "-t", min=0.0, help="Sampling temperature.")]
GreedyOpt = Annotated[
    bool, typer.Option("--greedy", help="Take the most likely sample at each step (no sampling).")
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Sampling seed (same seed and batch size -> same audio).")
]
RateOpt = Annotated[
    int | None, typer.Option("--sample-rate", "-r", min=1000, help="Resample the output to this rate (Hz).")
]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="Sampler backend of vqconvert.generate (auto picks).")
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


# -- inputs -------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    files: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (input, reason): count as failed files
    roots: list[Path] = field(default_factory=list)  # what outputs under --out-dir are relative to


def _matches(path: str, exts: tuple[str, ...]) -> bool:
    return os.path.splitext(path)[1].lower() in exts


def _walk(directory: str, exts: tuple[str, ...]) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".") and _matches(f, exts)
        ]
    return found


def _read_list(source: str) -> list[str]:
    try:
        if source == STDIN:
            text = sys.stdin.read()
        else:
            text = Path(source).read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        fail(f"{source}: cannot read the input list ({err.strerror or err})", 2)
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def collect_inputs(args: Iterable[str], from_list: str | None, exts: tuple[str, ...], what: str) -> Inputs:
    """Expand arguments and list entries into files (in order, without repeats)."""
    args = list(args)
    if from_list == STDIN and STDIN in args:
        fail("stdin cannot hold both the input list (--from-list -) and an input (-)", 2)
    if from_list == STDIN and sys.stdin.isatty():
        fail("--from-list - reads the list from stdin, but stdin is a terminal", 2)
    if from_list is not None:
        args += _read_list(from_list)
    if args.count(STDIN) > 1:
        fail("- (stdin) can be given only once", 2)
    if STDIN in args and sys.stdin.isatty():
        fail(
            "- reads the input file from stdin, but stdin is a terminal (pipe or redirect a file into it)", 2
        )
    out = Inputs()
    seen: set[str] = set()

    def add(path: str, root: Path | None) -> None:
        key = path if path == STDIN else os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.files.append(path)
            if root is not None:
                out.roots.append(root)

    for arg in args:
        if arg == STDIN:
            add(STDIN, None)
        elif os.path.isdir(arg):
            found = _walk(arg, exts)
            if not found:
                out.problems.append((arg, f"directory holds no {what} files"))
            for f in found:
                add(f, Path(arg))
        elif not os.path.lexists(arg) and _GLOB.search(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            files = []
            for m in matches:
                files += [(f, Path(m)) for f in _walk(m, exts)] if os.path.isdir(m) else [(m, Path(m).parent)]
            if not files:
                out.problems.append((arg, "no files match this pattern"))
            for f, root in files:
                add(f, root)
        else:
            add(arg, Path(arg).parent)  # a missing file fails later, with the reader's message
    return out


def common_root(roots: list[Path]) -> Path:
    if not roots:
        return Path(".")
    try:
        return Path(os.path.commonpath([os.path.abspath(r) for r in roots]))
    except ValueError:  # different drives
        return Path(".")


# -- outputs ------------------------------------------------------------------------------------------


def safe_name(name: str) -> str:
    """A speaker name made safe for a file name."""
    return re.sub(r"[^\w.+-]", "_", name).strip(".") or "speaker"


def output_path(src: str, suffix: str, out: str | None, out_dir: Path | None, root: Path) -> str:
    """Where the output of `src` goes: -o, else under --out-dir, else beside the input."""
    if out is not None:
        return out
    if src == STDIN:
        return STDIN if out_dir is None else str(out_dir / f"stdin{suffix}")
    p = Path(src)
    name = p.stem + suffix
    if out_dir is None:
        return str(p.with_name(name))
    try:
        rel = Path(os.path.abspath(p.parent)).relative_to(root)
    except ValueError:
        rel = Path()
    return str(out_dir / rel / name)


def _same_file(a: str, b: str) -> bool:
    if STDIN in (a, b):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


class Planner:
    """Checks outputs before any work: not the input, not planned twice, not existing unless --force."""

    def __init__(self, force: bool) -> None:
        self.force = force
        self.planned: dict[str, str] = {}

    def check(self, src: str, dst: str) -> None:
        if dst == STDIN:
            if STDIN in self.planned:
                raise OutputError("only one output can go to stdout")
            self.planned[STDIN] = src
            return
        if _same_file(src, dst):
            raise OutputError(f"output {dst} is the input file itself; refusing to overwrite it")
        key = os.path.abspath(dst)
        if key in self.planned:
            raise OutputError(f"output {dst} would also be written from {self.planned[key]}")
        if os.path.isdir(dst):
            raise OutputError(f"output {dst} is a directory")
        if os.path.lexists(dst) and not self.force:
            raise OutputError(f"output {dst} already exists (use --force to overwrite it)")
        why = unwritable_dir(Path(dst).parent)
        if why:
            raise OutputError(f"cannot write {dst}: {why}")
        self.planned[key] = src


def unwritable_dir(directory: Path) -> str | None:
    """Why files cannot be created in `directory` (made later if missing), or None when they can."""
    d = Path(os.path.abspath(directory))
    while not d.exists() and not d.is_symlink() and d.parent != d:
        d = d.parent
    if not d.is_dir():
        return f"{d} is not a directory"
    if not os.access(d, os.W_OK | os.X_OK):
        return f"directory {d} is not writable"
    return None


def ensure_parent(dst: str) -> None:
    """Create the directory of an output just before it is written."""
    if dst == STDIN:
        return
    parent = Path(dst).parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(
                f"cannot create the output directory {parent} ({err.strerror or err})"
            ) from None


def check_usage(inputs: Inputs, out: str | None, out_dir: Path | None, outputs_per_file: int = 1) -> None:
    n = len(inputs.files) + len(inputs.problems)
    if n == 0:
        fail("no input files given (pass files, directories, globs, - or --from-list)", 2)
    if out is not None and out_dir is not None:
        fail("-o/--output and --out-dir cannot be used together", 2)
    if out is not None and (n > 1 or len(inputs.files) == 1 and outputs_per_file > 1):
        fail("-o/--output takes a single input with a single output; use --out-dir for several", 2)
    if out_dir is not None:
        why = unwritable_dir(out_dir)
        if why:
            fail(f"--out-dir {out_dir}: cannot create files there ({why})", 1)


# -- reporting ----------------------------------------------------------------------------------------


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(text: str) -> str:
    """Whitespace folded, terminal escape codes (some torch messages carry them) removed."""
    return " ".join(_ANSI.sub("", str(text)).split())


def describe(name: str, err: BaseException) -> str:
    """One line `name: reason`, without repeating a name the message already starts with."""
    msg = one_line(str(err))
    if not isinstance(err, (VQConvertError, OSError)):
        msg = f"{type(err).__name__}: {msg}" if msg else type(err).__name__
    return msg if msg.startswith(f"{name}:") else f"{name}: {msg}"


class Report:
    """Progress bar over files on stderr, one error line per failure, the summary, the exit code."""

    def __init__(self, total: int, verb: str, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.total, self.quiet = total, quiet
        self.ok = self.failed = 0
        self.progress = Progress(
            TextColumn(verb),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[name]}"),
            console=console,
            transient=True,
            disable=quiet or not console.is_terminal,
        )
        self.task = self.progress.add_task(verb, total=total, name="")
        self.live = not self.progress.disable

    def __enter__(self) -> Report:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def current(self, name: str) -> None:
        self.progress.update(self.task, name=name)

    def error(self, name: str, err: BaseException | str) -> None:
        line = describe(name, err) if isinstance(err, BaseException) else f"{name}: {err}"
        print(f"error: {one_line(line)}", file=sys.stderr, flush=True)

    def done(self, name: str, err: BaseException | str | None = None) -> None:
        if err is None:
            self.ok += 1
        else:
            self.failed += 1
            self.error(name, err)
        self.progress.advance(self.task)

    def finish(self) -> None:
        self.progress.stop()
        # A single failed file already had its one error line; the summary is for batches and successes.
        if not self.quiet and not (self.total == 1 and self.failed):
            noun = "file" if self.total == 1 else "files"
            print(f"{self.total} {noun}: {self.ok} ok, {self.failed} failed", file=sys.stderr, flush=True)
        if self.failed:
            raise typer.Exit(1)


# -- model and speakers -------------------------------------------------------------------------------


def check_backend(backend: str) -> None:
    """Exit 2 for a sampler backend `vqconvert.generate` does not have."""
    import vqconvert.generate as gen

    known = getattr(gen, "BACKENDS", None)
    if known and backend not in known:
        fail(f"unknown --backend {backend!r}: choose from {', '.join(known)}", 2)


def load_cli_model(model: str | None, device: str) -> LoadedModel:
    """Load the model or exit 1 with one line."""
    from vqconvert.checkpoint import load_model

    dev = resolve_device(device)
    try:
        return load_model(model, dev)
    except CheckpointError as err:
        hint = (
            " (pass -m/--model or set $VQCONVERT_MODEL)" if model is None and "not found" in str(err) else ""
        )
        fail(one_line(f"{err}{hint}"))
    except VQConvertError as err:
        fail(one_line(str(err)))


def speaker_index(loaded: LoadedModel, name: str) -> int:
    try:
        return loaded.speaker_index(name)
    except VQConvertError as err:
        fail(str(err))


@contextmanager
def _usage_errors():
    """VQConvertError escaping a command (not a single file's) -> one line, exit 1."""
    try:
        yield
    except VQConvertError as err:
        fail(str(err))


def _display(src: str) -> str:
    return "<stdin>" if src == STDIN else src


def _chunk_frames(loaded: LoadedModel, chunk_seconds: float) -> int:
    """--chunk-seconds in code frames (at least one)."""
    return max(1, round(chunk_seconds * loaded.config.sample_rate / loaded.config.hop))


# -- encode -------------------------------------------------------------------------------------------


@app.command("encode", epilog=CONVENTIONS)
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
    from vqconvert.inference import encode_file

    with _usage_errors():
        ins = collect_inputs(inputs or [], from_list, AUDIO_EXTENSIONS, "audio")
        if fmt is CodesFormat.text and (output is not None or out_dir is not None):
            fail("--format text prints to stdout; it takes no -o/--out-dir (redirect stdout instead)", 2)
        check_usage(ins, output, out_dir)
        loaded = load_cli_model(model, device)
        root = common_root(ins.roots)
        chunk_frames = _chunk_frames(loaded, chunk_seconds)
        planner = Planner(force)
        with Report(len(ins.files) + len(ins.problems), "encode", quiet) as report:
            for src, why in ins.problems:
                report.done(src, why)
            for src in ins.files:
                name = _display(src)
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


@dataclass
class _FileState:
    name: str
    outputs: int = 0  # jobs queued or running
    ready: bool = False  # all of its jobs are queued
    failed: bool = False


class _Decoder:
    """Feeds DecodeJobs to `decode_to_files` `batch_size` at a time and reports files as they finish."""

    def __init__(self, loaded: LoadedModel, report: Report, *, batch_size: int, force: bool, **gen) -> None:
        self.loaded, self.report, self.batch_size, self.force, self.gen = (
            loaded,
            report,
            batch_size,
            force,
            gen,
        )
        self.pending: list = []
        self.files: dict[int, _FileState] = {}

    def add_file(self, key: int, name: str) -> None:
        self.files[key] = _FileState(name)

    def add(self, job) -> None:
        self.files[job.key].outputs += 1
        self.pending.append(job)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def fail_file(self, key: int, err: BaseException) -> None:
        """The file failed before (all of) its jobs were queued."""
        state = self.files[key]
        state.failed = True
        self.report.error(state.name, err)
        self.file_ready(key)

    def file_ready(self, key: int) -> None:
        self.files[key].ready = True
        self._maybe_done(key)

    def _maybe_done(self, key: int) -> None:
        state = self.files.get(key)
        if state is not None and state.ready and state.outputs == 0:
            self.report.failed += state.failed
            self.report.ok += not state.failed
            self.report.progress.advance(self.report.task)
            del self.files[key]

    def flush(self) -> None:
        from vqconvert.inference import decode_to_files

        jobs, self.pending = self.pending, []
        if not jobs:
            return
        ready = []
        for job in jobs:
            try:
                ensure_parent(str(job.output))
            except OutputError as err:
                self._finish_job(job, err)
            else:
                ready.append(job)
        if not ready:
            return
        names = list(dict.fromkeys(self.files[j.key].name for j in ready))
        label = names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")
        self.report.current(label)

        def progress(done: int, total: int) -> None:
            self.report.current(f"{label} {100 * done // max(total, 1)}%")

        for job, err in decode_to_files(
            self.loaded.model,
            ready,
            batch_size=self.batch_size,
            overwrite=self.force,
            progress=progress if self.report.live else None,
            **self.gen,
        ):
            self._finish_job(job, err)

    def _finish_job(self, job, err: BaseException | None) -> None:
        state = self.files[job.key]
        if err is not None:
            state.failed = True
            self.report.error(state.name, err)
        state.outputs -= 1
        self._maybe_done(job.key)


def _gen_options(
    temperature: float, greedy: bool, seed: int | None, backend: str, sample_rate: int | None
) -> dict:
    return {
        "temperature": temperature,
        "greedy": greedy,
        "seed": seed,
        "backend": backend,
        "sample_rate": sample_rate,
    }


def _decode_files(
    loaded: LoadedModel,
    ins: Inputs,
    verb: str,
    quiet: bool,
    jobs_for: Callable[[str, str, Report], list[tuple]],
    *,
    batch_size: int,
    force: bool,
    **gen,
) -> None:
    """decode and transfer: `jobs_for(src, name, report)` plans one input's outputs as (codes, speaker,
    output, samples) tuples, or raises to fail that file alone; the jobs run `batch_size` at a time."""
    from vqconvert.inference import DecodeJob

    with Report(len(ins.files) + len(ins.problems), verb, quiet) as report:
        dec = _Decoder(loaded, report, batch_size=batch_size, force=force, **gen)
        for src, why in ins.problems:
            report.done(src, why)
        for key, src in enumerate(ins.files):
            name = _display(src)
            dec.add_file(key, name)
            try:
                for codes, spk, dst, samples in jobs_for(src, name, report):
                    dec.add(DecodeJob(codes, spk, dst, samples, key))
            except Exception as err:  # noqa: BLE001 - one failed file must not stop the others
                dec.fail_file(key, err)
            else:
                dec.file_ready(key)
        dec.flush()
    report.finish()


@app.command("decode", epilog=CONVENTIONS)
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
    temperature: TempOpt = 1.0,
    greedy: GreedyOpt = False,
    seed: SeedOpt = None,
    sample_rate: RateOpt = None,
    backend: BackendOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Decode codes files (.vqc) into speech, in any voice.

    x.vqc -> x.wav beside the input, unless -o/--out-dir. The codes must come from this model (same
    fingerprint). The voice is --speaker, else the source speaker recorded in the codes. Audio is
    streamed to disk as it is generated (16-bit WAV, atomic); --batch-size generates several files
    together.
    """
    from vqconvert.codes import CodesFile

    with _usage_errors():
        ins = collect_inputs(inputs or [], from_list, (CODES_EXT,), "codes (.vqc)")
        check_usage(ins, output, out_dir)
        check_backend(backend)
        loaded = load_cli_model(model, device)
        fixed = speaker_index(loaded, speaker) if speaker is not None else None
        root = common_root(ins.roots)
        planner = Planner(force)

        def jobs_for(src: str, name: str, report: Report) -> list[tuple]:
            dst = output_path(src, ".wav", output, out_dir, root)
            planner.check(src, dst)
            codes = CodesFile.load(src)
            codes.check_compatible(loaded)
            spk = fixed
            if spk is None:
                if codes.speaker is None:
                    raise VQConvertError("the codes record no source speaker; pass --speaker NAME")
                if codes.speaker not in loaded.speakers:
                    raise VQConvertError(
                        f"the codes' source speaker {codes.speaker!r} is not one of this "
                        f"model's speakers; pass --speaker NAME"
                    )
                spk = loaded.speakers.index(codes.speaker)
            if codes.frames == 0:
                raise VQConvertError("the codes file holds no frames")
            return [(codes.tensor(), spk, dst, codes.samples)]

        _decode_files(
            loaded, ins, "decode", quiet, jobs_for, batch_size=batch_size, force=force,
            **_gen_options(temperature, greedy, seed, backend, sample_rate),
        )


@app.command("transfer", epilog=CONVENTIONS)
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
    temperature: TempOpt = 1.0,
    greedy: GreedyOpt = False,
    seed: SeedOpt = None,
    sample_rate: RateOpt = None,
    backend: BackendOpt = "auto",
    chunk_seconds: ChunkOpt = 10.0,
    quiet: QuietOpt = False,
) -> None:
    """Convert voices: encode each audio file and decode it in each --speaker's voice.

    x.wav -> x.<speaker>.wav beside the input (one output per target), unless -o (one input, one
    speaker) or --out-dir. The output keeps the input's length, at 16 kHz or --sample-rate.
    """
    from vqconvert.audio import load_audio
    from vqconvert.inference import encode_audio

    if not speaker:
        fail("give at least one target voice with --speaker NAME (see `vqconvert speakers`)", 2)
    with _usage_errors():
        ins = collect_inputs(inputs or [], from_list, AUDIO_EXTENSIONS, "audio")
        check_usage(ins, output, out_dir, outputs_per_file=len(speaker))
        check_backend(backend)
        loaded = load_cli_model(model, device)
        targets = [(s, speaker_index(loaded, s)) for s in dict.fromkeys(speaker)]
        chunk_frames = _chunk_frames(loaded, chunk_seconds)
        root = common_root(ins.roots)
        planner = Planner(force)

        def jobs_for(src: str, name: str, report: Report) -> list[tuple]:
            planned = []
            for spk_name, spk in targets:
                label = loaded.speakers[spk] if spk_name.isdigit() else spk_name
                dst = output_path(src, f".{safe_name(label)}.wav", output, out_dir, root)
                planner.check(src, dst)
                planned.append((spk, dst))
            report.current(name)
            audio = load_audio(src, loaded.config.sample_rate)
            codes = encode_audio(loaded.model, audio, chunk_frames=chunk_frames)
            return [(codes, spk, dst, int(audio.shape[0])) for spk, dst in planned]

        _decode_files(
            loaded, ins, "transfer", quiet, jobs_for, batch_size=batch_size, force=force,
            **_gen_options(temperature, greedy, seed, backend, sample_rate),
        )
