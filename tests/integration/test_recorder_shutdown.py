"""The history recorder at shutdown, on a real SQLite file: the daemon cancels the runs and the
history tick, then flushes the recorder before it closes the store, so a change queued behind
the batch being written is still on disk after a restart. (Steps are ordered by yielding to the
event loop once, `asyncio.sleep(0)`, not by waiting for time to pass.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from exporter.history import FAILING, PASSING
from exporter.loader import parse_config
from exporter.reasons import Reason
from exporter.recorder import Recorder
from exporter.redact import Redactor
from exporter.results import ItemKey, Result
from exporter.state.sqlite import SqliteStore

T0 = 1_800_000_000.0
CONFIG = "checklists:\n  - name: app\n    sections:\n      - name: ops\n        items:\n" + "".join(
    f"          - {{id: i{n}, title: Item {n}, file: {{path: /nonexistent}}}}\n" for n in range(2)
)


async def test_a_change_queued_behind_the_batch_in_flight_survives_shutdown(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStore(path)
    await store.open()
    recorder = Recorder(store, Redactor())
    recorder.track(parse_config(CONFIG).config)
    first, second = ItemKey("app", "i0"), ItemKey("app", "i1")
    await store.record(first, Result(True, Reason.OK, T0, 0.1))
    await store.record(second, Result(False, Reason.CONDITION, T0 + 1, 0.1))
    # A run of i0 reports (its batch goes to the store); the history tick then reports i1,
    # whose change waits for the next batch; then Daemon.stop cancels both.
    run = asyncio.create_task(recorder.observe(first, store.states(), T0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    tick = asyncio.create_task(recorder.tick(store.states(), T0 + 1, 400 * 86400))
    await asyncio.sleep(0)
    tick.cancel()
    run.cancel()
    await recorder.flush(5)
    await store.close()

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        records = await reopened.history(None, None, None, None, 100)
    finally:
        await reopened.close()
    assert [(c.item, c.state, c.at) for c in records] == [
        ("i0", PASSING, T0),
        ("i1", FAILING, T0 + 1),
    ]
