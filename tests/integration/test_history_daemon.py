"""Item history through `serve` as users see it: a target that fails and recovers three times
yields exactly those transitions on GET /api/v1/history, with their times, in SQLite and in
PostgreSQL; they survive SIGKILL and a restart without being recorded twice; /status shows the
last changes and the share of time passing."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.exporter import Exporter, wait_for

CONFIG = """
exporter:
  state: "{state}"
  default_interval: 1s
checklists:
  - name: app
    sections:
      - name: files
        items:
          - id: marker
            title: The marker file is there
            file: {{path: "{marker}"}}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    yield request.getfixturevalue("database")


def states(exporter: Exporter) -> list[dict[str, Any]]:
    response = exporter.get("/api/v1/history", params={"checklist": "app", "item": "marker"})
    assert response.status_code == 200, response.text
    return [r for r in response.json()["history"] if r["state"] in ("passing", "failing")]


def at(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["at"].replace("Z", "+00:00")).timestamp()


def test_three_failures_and_recoveries_are_recorded_and_survive_sigkill(
    tmp_path: Path, state_url: str
) -> None:
    marker = tmp_path / "marker"
    marker.write_text("here")
    config = tmp_path / "readiness.yaml"
    config.write_text(CONFIG.format(state=state_url, marker=marker))
    exporter = Exporter(config)
    exporter.start()
    toggled = []
    try:
        wait_for(lambda: len(states(exporter)) == 1, 15, "the first state", exporter)
        for expected in range(2, 8):
            toggled.append(time.time())
            if marker.exists():
                marker.unlink()
            else:
                marker.write_text("back")
            wait_for(
                lambda n=expected: len(states(exporter)) == n, 15, f"change {expected}", exporter
            )
        before = states(exporter)
    finally:
        exporter.stop(signal.SIGKILL)

    assert [(r["state"], r["reason"]) for r in before] == [
        ("passing", ""),
        *[("failing", "condition"), ("passing", "")] * 3,
    ]
    # Each change was recorded at the run that saw it: after the toggle, within the interval.
    for record, toggle in zip(before[1:], toggled, strict=True):
        assert toggle - 0.1 <= at(record) <= toggle + 3

    exporter.start()
    try:
        time.sleep(2.5)  # a few runs of the unchanged, passing target
        after = states(exporter)
        assert after == before
        status = exporter.get("/status", headers={"Accept": "application/json"}).json()
        item = status["checklists"][0]["sections"][0]["items"][0]
        history = item["history"]
        assert [c["id"] for c in history["changes"]] == [r["id"] for r in reversed(before)][:5]
        assert 0 < history["passing_7d"] < 1
        assert history["passing_7d"] == history["passing_30d"]
        page = exporter.get("/status", headers={"Accept": "text/html"}).text
        # Shares move with the clock between the two requests: the shape, then the changes.
        assert re.search(r"\d+\.\d% of 7 d · \d+\.\d% of 30 d", page)
        assert f"{before[-1]['at']} passing<br>{before[-2]['at']} failing (condition)" in page
        # Bad bounds are refused with the parameter named.
        refused = exporter.get("/api/v1/history", params={"since": "yesterday"})
        assert refused.status_code == 422 and refused.json()["field"] == "since"
        bounded = exporter.get(
            "/api/v1/history",
            params={"item": "marker", "since": at(before[3]) - 0.01, "until": at(before[5]) - 0.01},
        ).json()["history"]
        assert [r["id"] for r in bounded] == [before[3]["id"], before[4]["id"]]
    finally:
        exporter.stop()
