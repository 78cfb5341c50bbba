"""The timer-heap scheduler: jobs run on their interval, never overlap themselves, stop when
removed, and report how late they started."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from exporter.daemon import config_items
from exporter.loader import parse_config
from exporter.results import ItemKey
from exporter.scheduler import Scheduler

CONFIG = """
checklists:
  - name: app
    sections:
      - name: s
        items:
          - id: fast
            title: Fast
            interval: 200ms
            tcp: {host: 127.0.0.1, port: 1}
          - id: slow
            title: Slow
            interval: 200ms
            tcp: {host: 127.0.0.1, port: 2}
          - id: signed-off
            title: Manual
            manual: {}
"""


async def test_jobs_run_on_their_interval_and_never_overlap() -> None:
    items = list(config_items(parse_config(CONFIG).config))
    started: Counter[str] = Counter()
    running: set[str] = set()
    overlaps = 0

    async def run(key: ItemKey) -> None:
        nonlocal overlaps
        overlaps += key.item in running
        running.add(key.item)
        started[key.item] += 1
        # `slow` takes longer than its interval: its next runs are skipped, not stacked.
        await asyncio.sleep(0.5 if key.item == "slow" else 0.01)
        running.discard(key.item)

    scheduler = Scheduler(run)
    scheduler.start()
    scheduler.sync(items, timedelta(seconds=60), set())
    await asyncio.sleep(1.3)
    scheduler.shutdown()

    assert scheduler.job_count == 2, "manual items are not scheduled"
    assert 4 <= started["fast"] <= 8, started
    assert 1 <= started["slow"] <= 3, started
    assert overlaps == 0
    assert sum(scheduler.lag.counts) >= started["fast"] + started["slow"]


async def test_a_removed_item_stops_running() -> None:
    items = list(config_items(parse_config(CONFIG).config))
    started: Counter[str] = Counter()

    async def run(key: ItemKey) -> None:
        started[key.item] += 1

    scheduler = Scheduler(run)
    scheduler.start()
    scheduler.sync(items, timedelta(seconds=60), set())
    await asyncio.sleep(0.5)
    scheduler.sync([i for i in items if i[0].item != "fast"], timedelta(seconds=60), set())
    before = started["fast"]
    await asyncio.sleep(0.6)
    scheduler.shutdown()

    assert before >= 1
    assert started["fast"] == before
    assert started["slow"] >= 3
