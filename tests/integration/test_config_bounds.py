"""A hostile config file cannot stall or bloat the running daemon: an alias bomb sent by
SIGHUP is refused in milliseconds, off the event loop, and the old config keeps running."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.exporter import Exporter, wait_for

TESTDATA = Path(__file__).parents[1] / "unit" / "testdata"

CONFIG = """
exporter:
  state: "sqlite:///{dir}/state.db"
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: oncall
            title: On-call rotation
            manual: {{}}
"""


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    config = tmp_path / "readiness.yaml"
    config.write_text(CONFIG.format(dir=tmp_path))
    daemon = Exporter(config)
    daemon.start()
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=10)


def test_alias_bomb_reload_is_refused_fast_and_small(exporter: Exporter) -> None:
    assert exporter.proc is not None
    process = psutil.Process(exporter.proc.pid)
    assert exporter.value("readiness_config_last_reload_successful") == 1
    before = process.memory_info().rss
    exporter.config.write_text((TESTDATA / "invalid-alias-bomb.yml").read_text())
    started = time.monotonic()
    exporter.proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: exporter.value("readiness_config_last_reload_successful") == 0,
        3,
        "the reload to fail",
        exporter,
    )
    assert time.monotonic() - started < 3
    assert "too many aliases" in exporter.output()
    assert exporter.get("/health/live").status_code == 200
    assert exporter.value("readiness_item_info", item="oncall") == 1  # the old config runs on
    assert process.memory_info().rss - before < 30 * 2**20
    assert exporter.stop() == 0
