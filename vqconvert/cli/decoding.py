"""The file loop of `decode` and `transfer`: plan each input's outputs, generate them batched across
files (`vqconvert.decoding.decode_to_files`), report each file as its last output is written."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vqconvert.cli.inputs import Inputs, display
from vqconvert.cli.report import Report

if TYPE_CHECKING:
    import torch

    from vqconvert.checkpoint import LoadedModel
    from vqconvert.decoding import DecodeJob
    from vqconvert.sampling import SamplingOptions

# jobs_for(src, name, report) -> the input's outputs as (codes, speaker, output, samples); raises to fail it
JobsFor = Callable[[str, str, Report], list[tuple["torch.Tensor", int, str, "int | None"]]]


@dataclass
class _FileState:
    name: str
    outputs: int = 0  # jobs queued or running
    ready: bool = False  # all of its jobs are queued
    failed: bool = False


class _Files:
    """Which outputs of each input are still to come; a file is reported when its last one is done."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.files: dict[int, _FileState] = {}

    def plan(self, ins: Inputs, jobs_for: JobsFor) -> Iterator[DecodeJob]:
        """The jobs of every input in order, planned as the decoder asks for them."""
        from vqconvert.decoding import DecodeJob

        for key, src in enumerate(ins.files):
            state = self.files[key] = _FileState(display(src))
            try:
                planned = jobs_for(src, state.name, self.report)
            except Exception as err:  # noqa: BLE001 - one failed file must not stop the others
                state.failed = True
                self.report.error(state.name, err)
            else:
                for codes, spk, dst, samples in planned:
                    state.outputs += 1
                    yield DecodeJob(codes, spk, dst, samples, key)
            state.ready = True
            self._maybe_done(key)

    def finished(self, job: DecodeJob, err: BaseException | None) -> None:
        state = self.files[job.key]
        if err is not None:
            state.failed = True
            self.report.error(state.name, err)
        state.outputs -= 1
        self._maybe_done(job.key)

    def _maybe_done(self, key: int) -> None:
        state = self.files.get(key)
        if state is not None and state.ready and state.outputs == 0:
            self.report.failed += state.failed
            self.report.ok += not state.failed
            self.report.progress.advance(self.report.task)
            del self.files[key]

    def progress(self, batch: Sequence[DecodeJob], done: int, total: int) -> None:
        """The progress bar's label: the batch's files, and how far it is."""
        names = list(dict.fromkeys(self.files[j.key].name for j in batch))
        label = names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")
        self.report.current(label if done == 0 else f"{label} {100 * done // max(total, 1)}%")


def decode_files(
    loaded: LoadedModel,
    ins: Inputs,
    verb: str,
    quiet: bool,
    jobs_for: JobsFor,
    sampling: SamplingOptions,
    *,
    batch_size: int,
    force: bool,
    sample_rate: int | None,
    vocoder: str = "wavenet",
    mel_net=None,
) -> None:
    """decode and transfer: `jobs_for` plans one input's outputs; they run `batch_size` at a time."""
    from vqconvert.decoding import decode_to_files

    with Report(len(ins.files) + len(ins.problems), verb, quiet) as report:
        files = _Files(report)
        for src, why in ins.problems:
            report.done(src, why)
        results = decode_to_files(
            loaded.model,
            files.plan(ins, jobs_for),
            sampling,
            batch_size=batch_size,
            sample_rate=sample_rate,
            overwrite=force,
            make_parents=True,
            progress=files.progress if report.live else None,
            vocoder=vocoder,
            mel_net=mel_net,
        )
        for job, err in results:
            files.finished(job, err)
    report.finish()
