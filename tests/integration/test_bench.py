"""bench/run.py --quick runs in the suite so the benchmark cannot rot: every figure is produced
(timings are the full run's business, not a test's)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]

pytestmark = pytest.mark.slow

SCALE_FIGURES = (
    "live_s",
    "ready_s",
    "live_cpu_s",
    "ready_cpu_s",
    "first_round_s",
    "passing",
    "rss_mb",
    "metrics_bytes",
    "metrics_p50_ms",
    "metrics_p99_ms",
    "gzip_p50_ms",
    "gzip_p99_ms",
    "lag_runs",
    "lag_p50_s",
    "lag_p99_s",
    "cpu_ms_per_run",
    "cpu_percent",
)


def test_the_quick_benchmark_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())

    assert set(figures["engine"]) == {"http", "tcp"}
    for kind, row in figures["engine"].items():
        for side in ("blackbox", "ours", "ours_asyncio"):
            assert row[side]["probes"] > 0, (kind, side)
            assert row[side]["probes_per_s"] > 0, (kind, side)
            assert row[side]["probes_per_cpu_s"] > 0, (kind, side)
        assert row["ratio"] > 0, kind

    assert set(figures["daemon"]) == {"http", "tcp"}
    for kind, row in figures["daemon"].items():
        for side in ("blackbox", "ours"):
            assert row[side]["probes"] > 0, (kind, side)
            assert row[side]["probes_per_cpu_s"] > 0, (kind, side)
        assert row["ours"]["passing"] == row["ours"]["items"], kind
        assert row["ratio"] > 0, kind

    assert [r["items"] for r in figures["scale"]] == [20, 200]
    for row in figures["scale"]:
        for name in SCALE_FIGURES:
            assert math.isfinite(row[name]), (row["items"], name, row[name])
        assert row["passing"] == row["items"]
        assert row["lag_runs"] > 0
        assert row["live_s"] <= row["ready_s"]

    assert "| http | ours (" in done.stdout
    assert "| http | `serve`, 40 items every 1s |" in done.stdout
    assert "| 200 | 2s |" in done.stdout
