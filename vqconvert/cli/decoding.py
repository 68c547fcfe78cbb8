"""The decode loop shared by `decode` and `transfer`: jobs batched across files, files reported as they
finish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vqconvert.cli.inputs import Inputs, _display, ensure_parent
from vqconvert.cli.report import Report
from vqconvert.errors import OutputError

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel


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


def _gen_options(temperature: float, greedy: bool, seed: int | None, backend: str, sample_rate: int | None) -> dict:
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
