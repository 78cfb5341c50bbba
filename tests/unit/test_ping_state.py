"""A ping item's started run over a reload and a restart, in FixedClock time against a real
SQLite store: its timeout fires (or not) as the config and the store say."""

from __future__ import annotations

from pathlib import Path

from exporter.clock import FixedClock
from exporter.daemon import Daemon
from exporter.loader import load_config
from exporter.pings import PingRequest, ping_item
from exporter.reasons import Reason
from exporter.results import ItemKey, Result

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


def result_of(daemon: Daemon, item: str) -> Result | None:
    """The item's latest result: read after `stop`, which waits for the writes the daemon's
    timers started (the store's worker thread makes them)."""
    state = daemon.states().get(ItemKey("jobs", item))
    return state.result if state is not None else None


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
    finally:
        await daemon.stop()
    # No timeout was recorded for the item that is gone.
    assert result_of(daemon, "backup") is None


async def test_a_run_started_before_a_restart_still_times_out(tmp_path: Path) -> None:
    """The start is in the store: the restarted daemon arms the timeout again, and a run
    whose timeout passed while it was down fails as soon as it is back."""
    path = tmp_path / "readiness.yaml"
    path.write_text(config_text(tmp_path, BACKUP + EXPORT))
    clock = FixedClock()
    first = Daemon(load_config(path), clock=clock)
    await first.start()
    await start_ping(first, "backup")
    started = clock.now()
    await first.stop()

    clock.stall(30 * 60)
    second = Daemon(load_config(path), clock=clock)
    await second.start()
    try:
        assert second.running() == {ItemKey("jobs", "backup"): started}
        await clock.run_for(29 * 60)
        assert result_of(second, "backup") is None
        await clock.run_for(2 * 60)
        assert second.running() == {}
        assert second.store.ping_starts() == {}
    finally:
        await second.stop()
    timed_out = result_of(second, "backup")
    assert timed_out is not None and timed_out.reason is Reason.TIMEOUT

    # Down past the timeout: the fourth daemon fails that run at once. A run that finished
    # is not watched again.
    third = Daemon(load_config(path), clock=clock)
    await third.start()
    try:
        assert third.running() == {}
        await start_ping(third, "export")
        finish = PingRequest(checklist="jobs", item="export", status="success", exit_code=0)
        export = ItemKey("jobs", "export")
        await third.ping(export, ping_item(third.config, "jobs", "export"), finish)
        await start_ping(third, "backup")
        started = clock.now()
    finally:
        await third.stop()
    clock.stall(2 * HOUR)
    fourth = Daemon(load_config(path), clock=clock)
    await fourth.start()
    try:
        assert list(fourth.running()) == [ItemKey("jobs", "backup")]
        await clock.run_for(0)
        assert fourth.running() == {}
    finally:
        await fourth.stop()
    finished = result_of(fourth, "export")
    assert finished is not None and finished.reason is Reason.OK
    backup = result_of(fourth, "backup")
    assert backup is not None and backup.reason is Reason.TIMEOUT
    assert backup.started_at == started


async def test_a_finish_clears_a_start_this_daemon_did_not_see(tmp_path: Path) -> None:
    """A replica sharing the store saw the start: the finish here still ends the run there,
    so no later restart times out a job that succeeded."""
    path = tmp_path / "readiness.yaml"
    path.write_text(config_text(tmp_path, BACKUP))
    clock = FixedClock()
    daemon = Daemon(load_config(path), clock=clock)
    await daemon.start(schedule=False)
    key = ItemKey("jobs", "backup")
    try:
        await daemon.store.set_ping_start(key, clock.now())  # as another replica writes it
        finish = PingRequest(checklist="jobs", item="backup", status="success", exit_code=0)
        await daemon.ping(key, ping_item(daemon.config, "jobs", "backup"), finish)
    finally:
        await daemon.stop()
    restarted = Daemon(load_config(path), clock=clock)
    await restarted.start()
    try:
        assert restarted.running() == {}
    finally:
        await restarted.stop()
