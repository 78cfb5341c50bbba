"""The timer-heap scheduler driven by a FixedClock and a seeded RNG: interval jobs run on their
phase grid (started on the tick after their slot), cron jobs on their schedule, neither
overlapping itself; runs missed while stalled coalesce; a reload reschedules only what changed;
every start is in the lag histogram; the runs due within a tick start on one timer."""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from itertools import pairwise

import pytest

from exporter.clock import FixedClock, Timer
from exporter.config import Item
from exporter.daemon import config_items
from exporter.lag import BUCKETS
from exporter.loader import parse_config
from exporter.results import ItemKey
from exporter.scheduler import TICK, PhasedInterval, Scheduler

SEED = 14
DEFAULT = timedelta(seconds=60)


def items(*lines: str) -> list[tuple[ItemKey, Item]]:
    """The items of checklist `app`, one per `id: interval-or-schedule` line, plus a manual."""
    entries = "".join(
        f"          - {{id: {name}, title: {name}, {timing}, tcp: {{host: 127.0.0.1, port: 1}}}}\n"
        for name, timing in (line.split(" ", 1) for line in lines)
    )
    text = (
        "checklists:\n  - name: app\n    sections:\n      - name: s\n        items:\n"
        + entries
        + "          - {id: signed-off, title: Manual, manual: {}}\n"
    )
    return list(config_items(parse_config(text).config))


class Recorder:
    """The scheduler's `run`: notes when each job starts, holds a job until released."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.starts: defaultdict[str, list[float]] = defaultdict(list)
        self.gates: dict[str, asyncio.Event] = {}
        self.running: set[str] = set()
        self.overlaps = 0
        self.cancelled: list[str] = []

    async def __call__(self, key: ItemKey) -> None:
        self.starts[key.item].append(self.clock.now())
        self.overlaps += key.item in self.running
        self.running.add(key.item)
        try:
            if (gate := self.gates.get(key.item)) is not None:
                await gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(key.item)
            raise
        finally:
            self.running.discard(key.item)

    def hold(self, item: str) -> asyncio.Event:
        return self.gates.setdefault(item, asyncio.Event())


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def recorder(clock: FixedClock) -> Recorder:
    return Recorder(clock)


@pytest.fixture
async def scheduler(clock: FixedClock, recorder: Recorder) -> AsyncIterator[Scheduler]:
    running = Scheduler(recorder, clock, random.Random(SEED))
    running.start()
    yield running
    await running.stop(grace=1)


def on_grid(times: list[float], job: str, interval: float) -> bool:
    """Each time is a slot of the job's phase grid, or at most one tick after it."""
    phase = PhasedInterval(interval, job).phase
    late = [(t - phase) % interval for t in times]
    return all(-1e-6 < (x - interval if x > interval - 1e-6 else x) <= TICK + 1e-6 for x in late)


def on_ticks(times: list[float]) -> bool:
    return all(abs(t / TICK - round(t / TICK)) < 1e-3 for t in times)


WITHIN_A_TICK = bisect.bisect_left(BUCKETS, TICK) + 1
"""The lag histogram's buckets up to one tick."""


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in pairwise(times)]


async def test_interval_jobs_start_jittered_then_run_on_their_phase_grid(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    t0 = clock.now()
    scheduler.sync(items("fast interval: 1s", "other interval: 1s"), DEFAULT, set())
    await clock.run_for(10)

    assert scheduler.job_count == 2, "manual items are not scheduled"
    # Two jobs spread their first runs over 2/1000 of half a second, drawn from the seeded RNG.
    replay = random.Random(SEED)
    for name in ("fast", "other"):
        first, *rest = recorder.starts[name]
        planned = t0 + replay.uniform(0, 0.5 * 2 / 1000)
        assert planned <= first < planned + TICK and on_ticks([first]), "the tick after"
        assert rest[0] - first >= 0.5, "no two runs back to back after the startup run"
        assert on_grid(rest, f"app/{name}", 1.0) and on_ticks(rest)
        assert set(gaps(rest)) == {1.0}
        assert rest[-1] > t0 + 9, "no slot missed"
    assert recorder.starts["fast"][1:] != recorder.starts["other"][1:], "phases differ per item"
    runs = sum(len(times) for times in recorder.starts.values())
    lag = scheduler.lag.counts
    assert sum(lag[:WITHIN_A_TICK]) == sum(lag) == runs, "every start within a tick of plan"


async def test_a_job_still_running_is_skipped_not_stacked(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    t0 = clock.now()
    gate = recorder.hold("slow")
    scheduler.sync(items("slow interval: 1s", "fast interval: 1s"), DEFAULT, set())
    await clock.run_for(3.5)

    assert len(recorder.starts["slow"]) == 1
    assert len(recorder.starts["fast"]) == 4
    # Each planned its startup run and three grid slots; slow's three were skipped.
    assert sum(scheduler.lag.counts) == 8, "skipped slots are observed too"

    gate.set()
    await clock.run_for(1)

    _, resumed = recorder.starts["slow"]
    assert on_grid([resumed], "app/slow", 1.0)
    assert t0 + 3.5 < resumed <= t0 + 4.5 + TICK, "the first slot after it finished"
    assert recorder.overlaps == 0


async def test_runs_missed_while_stalled_coalesce_into_one(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    scheduler.sync(items("probe interval: 1s"), DEFAULT, set())
    await clock.run_for(2)
    before = len(recorder.starts["probe"])
    observed = sum(scheduler.lag.counts)

    clock.stall(10.25)
    stalled_until = clock.now()
    await clock.run_for(3)

    late, *after = recorder.starts["probe"][before:]
    assert late == stalled_until, "the missed runs became one, started at once"
    assert len(after) == 3 and set(gaps(after)) == {1.0}
    assert 0 < after[0] - late < 1 and on_grid(after, "app/probe", 1.0), "back on the grid"
    # It was planned 9.25 to 10.25 seconds before it started (the bucket above 10 seconds),
    # and the slots missed after it were never planned: no burst of skipped runs.
    assert scheduler.lag.counts[BUCKETS.index(30.0)] == 1
    assert sum(scheduler.lag.counts) == observed + 1 + len(after)


async def test_cron_items_run_on_their_schedule(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    t0 = clock.now()  # 2023-11-14 22:13:20 UTC
    lines = ('nightly schedule: "*/5 * * * *"', 'fresh schedule: "*/5 * * * *"')
    scheduler.sync(items(*lines), DEFAULT, {ItemKey("app", "fresh")})
    await clock.run_for(900)

    assert recorder.starts["nightly"] == [t0 + 100, t0 + 400, t0 + 700]
    assert recorder.starts["fresh"] == [t0, t0 + 100, t0 + 400, t0 + 700], "never run: at once"


async def test_a_reload_reschedules_only_what_changed(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    t0 = clock.now()
    scheduler.sync(
        items("same interval: 10s", "changed interval: 10s", "gone interval: 10s"), DEFAULT, set()
    )
    await clock.run_for(25)
    runs = {name: len(times) for name, times in recorder.starts.items()}

    # The same definition parsed again (a new object) keeps its job; the changed one starts
    # afresh on its new grid; the removed one stops.
    reloaded = items("same interval: 10s", "changed interval: 20s")
    scheduler.sync(reloaded, DEFAULT, set())
    await clock.run_for(60)

    assert scheduler.job_count == 2
    assert len(recorder.starts["gone"]) == runs["gone"]
    same = recorder.starts["same"]
    assert set(gaps(same[1:])) == {10.0} and on_grid(same[1:], "app/same", 10.0)
    assert all(t >= t0 + 25 + 0.5 for t in same[runs["same"] :]), "no extra run on reload"
    changed = recorder.starts["changed"][runs["changed"] :]
    assert t0 + 25 <= changed[0] <= t0 + 25 + 0.002 + TICK, "rescheduled: runs at once"
    assert set(gaps(changed[1:])) == {20.0} and on_grid(changed[1:], "app/changed", 20.0)


async def test_a_new_default_interval_reschedules_the_items_using_it(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    t0 = clock.now()
    defined = items("own interval: 10s", "default timeout: 5s")
    scheduler.sync(defined, timedelta(seconds=10), set())
    await clock.run_for(15)
    runs = {name: len(times) for name, times in recorder.starts.items()}

    scheduler.sync(defined, timedelta(seconds=30), set())
    await clock.run_for(60)

    assert set(gaps(recorder.starts["own"][1:])) == {10.0}
    moved = recorder.starts["default"][runs["default"] :]
    assert t0 + 15 <= moved[0] <= t0 + 15 + 0.002 + TICK, "rescheduled at once"
    assert set(gaps(moved[1:])) == {30.0}


async def test_stop_cancels_runs_in_flight_and_schedules_no_more(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    recorder.hold("probe")
    scheduler.sync(items("probe interval: 1s"), DEFAULT, set())
    await clock.run_for(0.5)
    assert recorder.running == {"probe"}

    await scheduler.stop(grace=5)
    assert recorder.cancelled == ["probe"] and not recorder.running, "unwound before stop returns"

    await clock.run_for(10)
    assert len(recorder.starts["probe"]) == 1


async def test_the_same_seed_gives_the_same_schedule(clock: FixedClock) -> None:
    defined = items(*(f"item-{n} interval: 2s" for n in range(50)))
    schedules = []
    for _ in range(2):
        replay_clock = FixedClock(clock.now())
        recorder = Recorder(replay_clock)
        scheduler = Scheduler(recorder, replay_clock, random.Random(SEED))
        scheduler.start()
        scheduler.sync(defined, DEFAULT, set())
        await replay_clock.run_for(5)
        await scheduler.stop(grace=1)
        schedules.append(dict(recorder.starts))
    assert schedules[0] == schedules[1]
    # 50 first runs planned over 0.05 s: spread over its ticks, not started at once.
    firsts = {times[0] for times in schedules[0].values()}
    assert len(firsts) == math.ceil(0.05 / TICK), "first runs spread"


async def test_run_now_starts_at_once_joins_a_run_in_flight_and_keeps_the_plan(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    scheduler.sync(items("hourly interval: 1h"), DEFAULT, set())
    await clock.run_for(5)  # the startup run
    assert len(recorder.starts["hourly"]) == 1
    key = ItemKey("app", "hourly")

    gate = recorder.hold("hourly")
    first = asyncio.create_task(scheduler.run_now(key))
    await clock.run_for(0)
    second = asyncio.create_task(scheduler.run_now(key))
    await clock.run_for(0)
    assert len(recorder.starts["hourly"]) == 2, "run now starts the item at once"
    assert not first.done() and not second.done()
    gate.set()
    assert await first is True and await second is True
    assert len(recorder.starts["hourly"]) == 2, "the second request joined the first run"
    assert recorder.overlaps == 0

    await clock.run_for(3600)
    assert len(recorder.starts["hourly"]) == 3, "the planned run still comes, once"
    assert await scheduler.run_now(ItemKey("app", "signed-off")) is False, "manual: no job"


async def test_a_large_config_starts_at_a_bounded_rate(
    clock: FixedClock, recorder: Recorder, scheduler: Scheduler
) -> None:
    """4,000 first runs spread over 2 s (2,000 a second), not one: fewer runs wait at once."""
    t0 = clock.now()
    scheduler.sync(items(*(f"item-{n} interval: 60s" for n in range(4000))), DEFAULT, set())
    await clock.run_for(0.5)
    early = sum(len(times) for times in recorder.starts.values())
    await clock.run_for(2)

    firsts = [times[0] for times in recorder.starts.values()]
    assert len(firsts) == 4000
    assert max(firsts) - t0 <= 2.0
    assert max(firsts) - t0 > 1.5, "spread over the whole window"
    assert 800 <= early <= 1200, "about 2,000 a second"


class CountingClock(FixedClock):
    """Counts the timers set: each is one wake-up of the event loop in real time."""

    def __init__(self) -> None:
        super().__init__()
        self.timers = 0

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        self.timers += 1
        return super().call_at(when, callback)


async def test_the_runs_due_within_a_tick_start_on_one_timer() -> None:
    """1,000 items every second: their 1,000 runs a second start on at most one timer per tick
    (not one per run), each on the tick after its slot."""
    clock = CountingClock()
    recorder = Recorder(clock)
    scheduler = Scheduler(recorder, clock, random.Random(SEED))
    scheduler.start()
    scheduler.sync(items(*(f"item-{n} interval: 1s" for n in range(1000))), DEFAULT, set())
    await clock.run_for(1)  # the startup runs
    timers, before = clock.timers, {name: len(times) for name, times in recorder.starts.items()}
    await clock.run_for(2)
    await scheduler.stop(grace=1)

    later = {name: times[before[name] :] for name, times in recorder.starts.items()}
    assert sum(map(len, later.values())) == 2000, "every item, every second"
    assert all(on_grid(times, f"app/{name}", 1.0) for name, times in later.items())
    assert on_ticks([t for times in later.values() for t in times])
    assert clock.timers - timers <= min(2 / TICK + 1, 2000 / 4), "several runs per timer"
