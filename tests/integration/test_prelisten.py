"""serve answers /health/live while it still loads a large config, and only that: every other
route answers 503 until the config is loaded, then the real app serves on the same socket."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.support.exporter import Exporter

ITEMS = 4000  # ~0.5 s of loading on a quiet machine: the window the test looks into


def big_config(path: Path) -> Path:
    lines = ["checklists:", "  - name: big", "    sections:", "      - name: all", "        items:"]
    for n in range(ITEMS):
        lines += [
            f"          - id: item-{n}",
            f"            title: Item {n}",
            "            manual: {}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_live_answers_while_the_config_loads_and_the_app_serves_after(tmp_path: Path) -> None:
    exporter = Exporter(
        big_config(tmp_path / "big.yml"),
        env={"READINESS_STATE": f"sqlite:///{tmp_path}/state.db"},
    )
    with exporter.log.open("ab") as log:
        exporter.proc = subprocess.Popen(
            exporter.command, env=exporter.env, stdout=log, stderr=subprocess.STDOUT
        )
    early: list[tuple[int, str, int, str]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert exporter.proc.poll() is None, exporter.output()
            try:
                live = exporter.get("/health/live")
                metrics = exporter.get("/metrics")
            except httpx.HTTPError:
                time.sleep(0.01)
                continue
            if metrics.status_code == 200:
                break
            early.append((live.status_code, live.text, metrics.status_code, metrics.text))
        else:
            raise AssertionError(f"never served /metrics:\n{exporter.output()}")
        # While loading: live, and nothing else (one poll at least: loading takes longer than
        # binding, which happens before the config is read).
        assert early, "no answer was seen before the config was loaded"
        for live_code, live_text, metrics_code, metrics_text in early:
            assert (live_code, metrics_code) == (200, 503)
            assert httpx.Response(200, text=live_text).json() == {"status": "ok"}
            assert httpx.Response(503, text=metrics_text).json() == {"status": "not ready"}
        # Then the app itself, on the same address.
        assert exporter.get("/health/live").json() == {"status": "ok"}
        assert b"readiness_item_info" in exporter.get("/metrics").content
    finally:
        assert exporter.stop() == 0
