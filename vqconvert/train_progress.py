"""Rich progress bar for training, on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainProgress:
    """Context manager: a bar of steps with loss terms, perplexity and codes in use."""

    def __init__(self, total: int, start: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, info="")

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, row: dict, val: dict) -> None:
        info = f"bits {row['bits']:.2f} cb {row['codebook']:.3f} ppl {row['perplexity']:.0f} used {row['used']}"
        if "audio_s_per_s" in row:
            info += f" {row['audio_s_per_s']:.2f} audio-s/s"
        if val.get("val_bits") is not None:
            info += f" | val {val['val_bits']:.2f}"
            if "val_speaker_gain_bits" in val:
                info += f" spk +{val['val_speaker_gain_bits']:.2f}"
        self.progress.update(self.task, completed=step, info=info)
