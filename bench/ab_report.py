"""Compare training runs by what a listener hears: the in-training probe (free-running WER, STOI,
log-mel L1, Griffin-Lim WER) and validation, against logged training time, so that runs of different
step cost are compared at equal CPU budget (issue 14's A/B).

    python bench/ab_report.py RUN_DIR [RUN_DIR ...] [--at HOURS] [--png curves.png]

Training time is, by default, the process CPU time the trainer logs (minus the probe's own); --clock
wall uses the logged wall intervals instead. --at picks, per run, the probe closest to that many hours
(default: the largest budget every run has reached).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

METRICS = (
    ("probe_t0.8_wer", "WER t0.8"),
    ("probe_t1_wer", "WER t1"),
    ("probe_t0.8_stoi", "STOI t0.8"),
    ("probe_t1_stoi", "STOI t1"),
    ("probe_t1_mel_l1", "mel L1 t1"),
    ("probe_gl_wer", "GL WER"),
    ("probe_mel_speaker_gain", "mel spk gain"),
)


def load_run(run: Path, clock: str = "cpu") -> tuple[str, list[dict], list[dict]]:
    """(label, probe rows, validation rows), each row with "hours" of training time at its step.

    clock "wall": the trainer's logged intervals (audio per second since the previous row) minus probe
    time. clock "cpu": the process CPU seconds each row logs (`cpu_s`) minus the probe's; rows from
    before the trainer logged CPU time are estimated at the run's median measured CPU seconds per step.
    """
    if (run / "config.json").exists():  # written by the trainer; finished runs keep it, not latest.pt
        ckpt = json.loads((run / "config.json").read_text())
    else:
        ckpt = torch.load(run / "latest.pt", map_location="cpu", weights_only=True)
    tc = ckpt.get("train_config") or {}
    label = f"{run.name} ({ckpt['model_config']['preset']})"
    crop_s = round(tc.get("crop_seconds", 0.5) * 16000 / 64) * 64 / 16000
    audio_per_row = tc.get("batch_size", 4) * crop_s * tc.get("log_every", 10)
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    intervals, last, probe_wall, probe_cpu = [], 0, 0.0, 0.0
    for r in rows:  # one (steps, wall seconds, cpu seconds or None) per training log row
        if "probe_seconds" in r:
            probe_wall, probe_cpu = probe_wall + r["probe_seconds"], probe_cpu + r.get("probe_cpu_s", 0.0)
        if "audio_s_per_s" in r:
            wall = audio_per_row * (r["step"] - last) / tc.get("log_every", 10) / r["audio_s_per_s"]
            cpu = max(0.0, r["cpu_s"] - probe_cpu) if "cpu_s" in r else None
            intervals.append((r["step"] - last, max(0.0, wall - probe_wall), cpu))
            last, probe_wall, probe_cpu = r["step"], 0.0, 0.0
    rates = sorted(c / n for n, _, c in intervals if c is not None and n > 0)
    rate = rates[len(rates) // 2] if rates else None
    if clock == "cpu" and rate is None:
        raise SystemExit(f"{run}: no CPU time logged; use --clock wall")
    estimated = sum(n for n, _, c in intervals if c is None)
    if clock == "cpu" and estimated:
        label += f" [CPU est. for {estimated} steps]"
    seconds, k, probes, vals = 0.0, 0, [], []
    for r in rows:
        if "audio_s_per_s" in r:
            n, wall, cpu = intervals[k]
            k += 1
            seconds += wall if clock == "wall" else (cpu if cpu is not None else n * rate)
        if "probe_seconds" in r:
            probes.append({**r, "hours": seconds / 3600})
        if "val_bits" in r:
            vals.append({**r, "hours": seconds / 3600})
    return label, probes, vals


def _at(rows: list[dict], hours: float) -> dict | None:
    """The row whose training time is closest to `hours` (its own time is printed beside it)."""
    return min(rows, key=lambda r: abs(r["hours"] - hours)) if rows else None


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _cells(label: str, p: dict | None, v: dict | None) -> list[str]:
    cells = [label, str(p["step"]) if p else "-", _f(p["hours"]) if p else "-"]
    cells += [_f(v.get("val_bits")) if v else "-", _f(v.get("val_speaker_gain_bits")) if v else "-"]
    return cells + [_f(p.get(k)) if p else "-" for k, _ in METRICS]


def _print_all(runs) -> None:
    """Every probe row of each run beside the validation at the same step."""
    print(" | ".join(["run", "step", "hours", "val bits", "spk gain"] + [name for _, name in METRICS]))
    for label, probes, vals in runs:
        by_step = {v["step"]: v for v in vals}
        for p in probes:
            print(" | ".join(_cells(label, p, by_step.get(p["step"]))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--at", type=float, help="training hours to compare at")
    ap.add_argument("--png", type=Path, help="plot the probe metrics against training hours")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="CPU hours (default) or logged wall")
    ap.add_argument("--all", action="store_true", help="every probe of each run, not the one closest to --at")
    args = ap.parse_args()
    runs = [load_run(r, args.clock) for r in args.runs]
    if args.all:
        _print_all(runs)
    else:
        _print_at(runs, args.at, args.clock)
    if args.png:
        plot(runs, args.png, args.clock)
        print(f"wrote {args.png}")


def _print_at(runs, at: float | None, clock: str) -> None:
    budget = at if at is not None else min(p[-1]["hours"] if p else 0.0 for _, p, _ in runs)
    print(f"at {budget:.2f} h of training time ({clock} clock) (each run's probe closest to it):")
    head = ["run", "step", "hours", "val bits", "spk gain"] + [name for _, name in METRICS]
    print(" | ".join(head))
    for label, probes, vals in runs:
        print(" | ".join(_cells(label, _at(probes, budget), _at(vals, budget))))
    src = [p[-1].get("probe_source_wer") for _, p, _ in runs if p]
    if src:
        print(f"source WER of the probe clips (the recogniser's floor): {_f(src[0])}")


def plot(runs, path: Path, clock: str = "cpu") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        ("probe_t0.8_wer", "free-running WER (t=0.8)"),
        ("probe_t1_stoi", "free-running STOI (t=1.0)"),
        ("probe_t1_mel_l1", "free-running log-mel L1 (t=1.0)"),
        ("probe_gl_wer", "Griffin-Lim WER (mel head)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (key, title) in zip(
        axes.flat,
        keys + [("val_bits", "validation NLL, bits/sample"), ("val_speaker_gain_bits", "speaker gain, bits")],
        strict=True,
    ):
        for n, (label, probes, vals) in enumerate(runs):
            rows = vals if key.startswith("val_") else probes
            pts = [(r["hours"], r[key]) for r in rows if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=label, color=f"C{n}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"training hours ({clock} clock)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
