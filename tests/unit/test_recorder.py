"""The history recorder with the clock passed in: a run's change is recorded at the run's start,
a lapse at the tick that sees it, an unchanged state never twice; the hourly prune removes only
what is older than the retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from exporter.history import BLOCKED, DEFINED, FAILING, LAPSED, PASSING
from exporter.loader import parse_config
from exporter.reasons import Reason
from exporter.recorder import PRUNE_EVERY, Recorder
from exporter.redact import Redactor
from exporter.results import ItemKey, Result
from exporter.state.sqlite import SqliteStore

T0 = 1_800_000_000.0
DAY = 86400.0
CONFIG = """
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: backup
            title: Backup done
            every: 1d
            grace: 1h
            file: {path: /nonexistent}
"""
KEY = ItemKey("app", "backup")


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(":memory:")
    await opened.open()
    yield opened
    await opened.close()


async def test_runs_and_ticks_record_each_change_once(store: SqliteStore) -> None:
    recorder = Recorder(store, Redactor())
    recorder.track(parse_config(CONFIG).config)
    await recorder.define(T0)
    await recorder.define(T0 + 5)  # a reload of the same definition: nothing new
    await store.record(KEY, Result(True, Reason.OK, T0, 0.1))
    await recorder.observe(KEY, store.states(), T0)
    await store.record(KEY, Result(True, Reason.OK, T0 + 60, 0.1))
    await recorder.observe(KEY, store.states(), T0 + 60)
    await store.record(KEY, Result(False, Reason.CONDITION, T0 + 120, 0.1))
    await recorder.observe(KEY, store.states(), T0 + 120)
    retention = 400 * DAY
    await recorder.tick(store.states(), T0 + DAY, retention)  # due, within grace
    await recorder.tick(store.states(), T0 + DAY + 2 * 3600, retention)  # lapsed
    await recorder.tick(store.states(), T0 + DAY + 3 * 3600, retention)
    records = await store.history(None, None, None, None, 100)
    assert [(c.state, c.reason, c.at) for c in records] == [
        (DEFINED, records[0].reason, T0),
        (PASSING, "", T0),
        (FAILING, "condition", T0 + 120),
        (LAPSED, "condition", T0 + DAY + 2 * 3600),
    ]


async def test_the_prune_keeps_what_is_younger_than_the_retention(store: SqliteStore) -> None:
    recorder = Recorder(store, Redactor())
    recorder.track(parse_config(CONFIG.replace("every: 1d", "").replace("grace: 1h", "")).config)
    await store.record(KEY, Result(True, Reason.OK, T0, 0.1))
    await recorder.observe(KEY, store.states(), T0)
    await store.record(KEY, Result(False, Reason.CONDITION, T0 + 10 * DAY, 0.1))
    await recorder.observe(KEY, store.states(), T0 + 10 * DAY)
    await recorder.tick(store.states(), T0 + 10 * DAY, retention=5 * DAY)
    left = await store.history(None, None, None, None, 100)
    assert [(c.state, c.at) for c in left] == [(FAILING, T0 + 10 * DAY)]
    # The next prune waits an hour.
    await store.record(KEY, Result(True, Reason.OK, T0 + 10 * DAY + 2000, 0.1))
    await recorder.observe(KEY, store.states(), T0 + 10 * DAY + 2000)
    await recorder.tick(store.states(), T0 + 10 * DAY + 2500, retention=600)
    assert len(await store.history(None, None, None, None, 100)) == 2
    await recorder.tick(store.states(), T0 + 10 * DAY + PRUNE_EVERY, retention=1800)
    left = await store.history(None, None, None, None, 100)
    assert [(c.state, c.at) for c in left] == [(PASSING, T0 + 10 * DAY + 2000)]


async def test_a_failing_item_behind_a_failing_dependency_is_recorded_blocked(
    store: SqliteStore,
) -> None:
    config = parse_config(
        CONFIG.replace("every: 1d", "").replace("grace: 1h", "")
        + """          - id: restore
            title: Restore tested
            depends_on: [backup]
            file: {path: /nonexistent}
"""
    ).config
    recorder = Recorder(store, Redactor())
    recorder.track(config)
    restore = ItemKey("app", "restore")
    await store.record(KEY, Result(False, Reason.CONDITION, T0, 0.1))
    await store.record(restore, Result(False, Reason.CONDITION, T0, 0.1))
    await recorder.observe(restore, store.states(), T0)
    await recorder.tick(store.states(), T0 + 10, 400 * DAY)
    await store.record(KEY, Result(True, Reason.OK, T0 + 20, 0.1))
    await recorder.tick(store.states(), T0 + 30, 400 * DAY)
    records = await store.history(None, "restore", None, None, 100)
    assert [(c.state, c.reason, c.at) for c in records] == [
        (BLOCKED, "condition", T0),
        (FAILING, "condition", T0 + 30),
    ]


async def test_changes_of_many_runs_at_once_are_each_recorded_once(store: SqliteStore) -> None:
    """The first runs of many items arrive while a batch is being written: every item's
    change is recorded, in the order the runs reported them."""
    config = parse_config(
        "checklists:\n  - name: app\n    sections:\n      - name: ops\n        items:\n"
        + "".join(
            f"          - {{id: i{n}, title: Item {n}, file: {{path: /nonexistent}}}}\n"
            for n in range(50)
        )
    ).config
    recorder = Recorder(store, Redactor())
    recorder.track(config)
    keys = [ItemKey("app", f"i{n}") for n in range(50)]
    for n, key in enumerate(keys):
        await store.record(
            key, Result(n % 2 == 0, Reason.OK if n % 2 == 0 else Reason.CONDITION, T0 + n, 0.1)
        )
    await asyncio.gather(*(recorder.observe(k, store.states(), T0 + n) for n, k in enumerate(keys)))
    records = sorted(await store.history(None, None, None, None, 100), key=lambda c: c.id or 0)
    assert [(c.item, c.state) for c in records] == [
        (f"i{n}", PASSING if n % 2 == 0 else FAILING) for n in range(50)
    ]


async def test_a_config_with_no_items_defines_nothing_and_returns(store: SqliteStore) -> None:
    # An empty config, or a shard that owns no checklist: the daemon waits for define before
    # it schedules and turns ready, so a define that waited for a batch never made hung it.
    recorder = Recorder(store, Redactor())
    recorder.track(
        parse_config(
            "checklists:\n  - name: app\n    sections:\n      - {name: ops, items: []}\n"
        ).config
    )
    await asyncio.wait_for(recorder.define(T0), timeout=5)
    assert await store.history(None, None, None, None, 100) == []
