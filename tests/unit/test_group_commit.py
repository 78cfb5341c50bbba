"""Group commit of probe results: many results, one transaction; a result shows only once its
batch is committed; nothing waits longer than the flush interval; close writes what waits."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from exporter.reasons import Reason
from exporter.results import ItemKey, Result
from exporter.state.batch import Batch, GroupCommit
from exporter.state.sqlite import SqliteStore


def result(at: float, passing: bool = True) -> Result:
    reason = Reason.OK if passing else Reason.CONNECT
    return Result(passing=passing, reason=reason, started_at=at, duration=0.01)


async def test_results_recorded_together_are_written_in_one_batch() -> None:
    batches: list[Batch] = []

    async def write(batch: Batch) -> None:
        batches.append(batch)

    commit = GroupCommit(write, every=0.05)
    keys = [ItemKey("app", f"item-{n}") for n in range(50)]
    await asyncio.gather(*(commit.record(k, (result(1.0), 1.0, 1.0)) for k in keys))
    assert [sorted(b) for b in batches] == [sorted(keys)]


async def test_a_full_batch_is_written_before_the_interval() -> None:
    batches: list[Batch] = []

    async def write(batch: Batch) -> None:
        batches.append(batch)

    commit = GroupCommit(write, every=60.0, most=10)
    keys = [ItemKey("app", f"item-{n}") for n in range(25)]
    waiting = [asyncio.ensure_future(commit.record(k, (result(1.0), 1.0, 1.0))) for k in keys]
    await asyncio.wait_for(asyncio.gather(*waiting[:20]), 5)
    assert [len(b) for b in batches] == [10, 10]
    assert not any(w.done() for w in waiting[20:])
    await commit.flush()
    assert [len(b) for b in batches] == [10, 10, 5]
    assert all(w.done() for w in waiting)


async def test_a_result_shows_only_once_committed_and_close_writes_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(str(path))
    await store.open()
    key = ItemKey("app", "health")
    try:
        recording = asyncio.ensure_future(store.record(key, result(5.0)))
        await asyncio.wait({recording}, timeout=0)  # one turn of the loop: it has started
        assert not recording.done()
        assert key not in store.states()  # waiting for its batch: not shown, not stored
        await asyncio.wait_for(recording, 1.0)  # within the flush interval (0.1 s) and a commit
        assert store.states()[key].last_success == 5.0
        with closing(sqlite3.connect(path)) as db:
            stored = db.execute("SELECT last_success FROM item_state").fetchall()
        assert stored == [(5.0,)]

        # Shutdown while a result waits: close writes it.
        late = asyncio.ensure_future(store.record(key, result(9.0)))
        await asyncio.wait({late}, timeout=0)
        late.cancel()
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT last_success FROM item_state").fetchall() == [(9.0,)]


async def test_a_failing_result_keeps_the_last_success_of_an_earlier_one() -> None:
    batches: list[Batch] = []

    async def write(batch: Batch) -> None:
        batches.append(batch)

    commit = GroupCommit(write, every=0.05)
    key = ItemKey("app", "health")
    first = asyncio.ensure_future(commit.record(key, (result(1.0), 1.0, 1.0)))
    second = asyncio.ensure_future(commit.record(key, (result(2.0, passing=False), None, 2.0)))
    await asyncio.gather(first, second)
    [batch] = batches
    assert batch[key][1:] == (1.0, 1.0)
    assert not batch[key][0].passing
