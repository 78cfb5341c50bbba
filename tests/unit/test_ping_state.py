"""A ping item's started run over a reload and a restart, in FixedClock time against a real
SQLite store: its timeout fires (or not) as the config and the store say."""

from __future__ import annotations

from pathlib import Path

from exporter.clock import FixedClock
from exporter.daemon import Daemon
from exporter.loader import load_config
from exporter.pings import PingRequest, ping_item
from exporter.results import ItemKey

HOUR = 3600.0


def config_text(tmp_path: Path, items: str) -> str:
    return f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
checklists:
  - name: jobs
    sections:
      - name: nightly
        items:
{items}
"""


BACKUP = """          - id: backup
            title: Backups run
            timeout: 1h
            ping: {}
"""
EXPORT = """          - id: export
            title: Export
            ping: {}
"""


async def start_ping(daemon: Daemon, item: str) -> None:
    request = PingRequest(checklist="jobs", item=item, status="start")
    await daemon.ping(ItemKey("jobs", item), ping_item(daemon.config, "jobs", item), request)


async def test_a_reload_that_removes_a_started_item_disarms_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "readiness.yaml"
    path.write_text(config_text(tmp_path, BACKUP + EXPORT))
    clock = FixedClock()
    daemon = Daemon(load_config(path), clock=clock)
    await daemon.start(schedule=False)
    try:
        await start_ping(daemon, "backup")
        await start_ping(daemon, "export")
        started = clock.now()
        path.write_text(config_text(tmp_path, EXPORT))
        assert await daemon.reload()
        assert daemon.running() == {ItemKey("jobs", "export"): started}  # kept: still there
        await clock.run_for(2 * HOUR)
        # No timeout was recorded for the item that is gone.
        assert ItemKey("jobs", "backup") not in daemon.states() or (
            daemon.states()[ItemKey("jobs", "backup")].result is None
        )
    finally:
        await daemon.stop()
