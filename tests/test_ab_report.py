"""bench/ab_report.py: training time per probe (CPU and wall clocks, probe time excluded, estimates for
rows logged before `cpu_s`), the closest-budget pick and the printed table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import bench_module

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "ab_report.py"


ab = bench_module("ab_report")


def _run(tmp_path: Path, name: str, rows: list[dict], batch: int = 4) -> Path:
    run = tmp_path / name
    run.mkdir()
    cfg = {"model_config": {"preset": "tiny"}, "train_config": {"batch_size": batch, "crop_seconds": 0.5}}
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _train(step: int, cpu: float | None, audio_s_per_s: float = 1.0) -> dict:
    r = {"step": step, "loss": 1.0, "audio_s_per_s": audio_s_per_s}
    if cpu is not None:
        r["cpu_s"] = cpu
    return r


def _probe(step: int, stoi: float, seconds: float = 0.0, cpu: float = 0.0) -> dict:
    return {"step": step, "probe_t1_stoi": stoi, "probe_source_wer": 0.5, "probe_seconds": seconds, "probe_cpu_s": cpu}


def test_cpu_hours_exclude_the_probe(tmp_path: Path) -> None:
    # 10 steps of 360 CPU s each row; the probe after step 20 cost 180 CPU s, logged in the next row
    rows = [_train(10, 360.0), _train(20, 360.0), _probe(20, 0.4, 200.0, 180.0), _train(30, 540.0), _probe(30, 0.5)]
    _, probes, _ = ab.load_run(_run(tmp_path, "a", rows))
    assert [p["step"] for p in probes] == [20, 30]
    assert probes[0]["hours"] == pytest.approx(0.2)
    assert probes[1]["hours"] == pytest.approx(0.3)


def test_rows_before_cpu_logging_are_estimated_at_the_median_rate(tmp_path: Path) -> None:
    rows = [_train(10, None), _train(20, None), _train(30, 720.0), _train(40, 360.0), _train(50, 360.0)]
    rows.append({"step": 50, "val_bits": 4.0, "val_speaker_gain_bits": 0.1})
    label, _, vals = ab.load_run(_run(tmp_path, "b", rows))
    assert "[CPU est. for 20 steps]" in label
    # median of 72, 36, 36 CPU s per step = 36: 20 estimated steps = 720 s, plus 1440 s logged
    assert vals[0]["hours"] == pytest.approx(2160 / 3600)


def test_wall_clock_from_logged_throughput(tmp_path: Path) -> None:
    # batch 4 x 0.5 s x 10 steps = 20 s of audio per row; at 0.5 audio s per s that is 40 s of wall time
    rows = [_train(10, None, 0.5), _probe(10, 0.3, 4.0), _train(20, None, 0.5), _probe(20, 0.4)]
    _, probes, _ = ab.load_run(_run(tmp_path, "c", rows), clock="wall")
    assert [p["hours"] for p in probes] == pytest.approx([40 / 3600, 76 / 3600])
    with pytest.raises(SystemExit, match="no CPU time logged"):
        ab.load_run(_run(tmp_path, "d", rows))


def test_at_picks_the_closest_budget() -> None:
    rows = [{"hours": 1.0, "step": 1}, {"hours": 2.0, "step": 2}, {"hours": 3.1, "step": 3}]
    assert ab._at(rows, 2.4)["step"] == 2
    assert ab._at(rows, 2.6)["step"] == 3
    assert ab._at([], 1.0) is None


def test_table_compares_runs_at_the_common_budget(tmp_path: Path) -> None:
    slow = _run(tmp_path, "slow", [_train(10, 3600.0), _probe(10, 0.3), _train(20, 3600.0), _probe(20, 0.6)])
    fast = _run(tmp_path, "fast", [_train(10, 1800.0), _probe(10, 0.4), _train(20, 1800.0), _probe(20, 0.5)])
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(slow), str(fast)], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("at 1.00 h")  # the largest budget both runs reached
    lines = {line.split(" ")[0]: line.split(" | ") for line in out.splitlines() if " | " in line}
    assert lines["slow"][1:3] == ["10", "1.000"] and lines["slow"][8] == "0.300"
    assert lines["fast"][1:3] == ["20", "1.000"] and lines["fast"][8] == "0.500"
    assert "recogniser's floor): 0.500" in out


def test_all_lists_every_probe_with_its_validation(tmp_path: Path) -> None:
    val = {"step": 20, "val_bits": 4.25, "val_speaker_gain_bits": 0.125}
    run = _run(tmp_path, "r", [_train(10, 3600.0), _probe(10, 0.3), _train(20, 1800.0), val, _probe(20, 0.6)])
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--all"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(" | ") for line in out.splitlines()[1:]]
    assert [r[1:5] for r in rows] == [["10", "1.000", "-", "-"], ["20", "1.500", "4.250", "0.125"]]
    assert [r[8] for r in rows] == ["0.300", "0.600"]


def test_all_with_png_also_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = _run(tmp_path, "r", [_train(10, 3600.0), _probe(10, 0.3), _train(20, 1800.0), _probe(20, 0.6)])
    png = tmp_path / "curves.png"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--all", "--png", str(png)], capture_output=True, text=True, check=True
    ).stdout
    assert f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
