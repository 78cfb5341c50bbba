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
    "startup_s",
    "passing",
    "rss_mb",
    "metrics_bytes",
    "metrics_p50_ms",
    "metrics_p99_ms",
    "lag_runs",
    "lag_p50_s",
    "lag_p99_s",
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

    assert [(r["items"], r["interval"]) for r in figures["scale"]] == [(20, "2s"), (20, "1s")]
    for row in figures["scale"]:
        for name in SCALE_FIGURES:
            assert math.isfinite(row[name]), (row["interval"], name, row[name])
        assert row["passing"] == row["items"]
        assert row["lag_runs"] > 0

    assert "| http | ours (" in done.stdout
    assert "| 20 | 2s |" in done.stdout
