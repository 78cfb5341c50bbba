"""One job per probed item on a timer heap: interval (phased) or cron, never overlapping itself."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import heapq
import itertools
import math
import random
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from exporter.clock import Clock, Timer
from exporter.config import Item
from exporter.lag import LagHistogram
from exporter.results import PASSIVE_KINDS, ItemKey

log = structlog.get_logger("exporter.scheduler")

FULL_SPREAD_JOBS = 1000
FIRST_RUNS_PER_SECOND = 2000.0
"""Above 2,000 jobs the first runs spread further, at this rate (at most half an interval):
10,000 runs started within one second waited in 10,000 tasks at once, a peak of memory the
process kept (RSS 112 MB, then 93 MB), for a first round no shorter (bench/README.md)."""
TICK = 0.02
"""Due runs start together on a grid of ticks: the timer wakes at the earliest due time
rounded up to the next tick and starts every run due by then, so 500 runs a second cost ~50
wake-ups, not 500 (each an epoll cycle, a timer handle and the heap's bookkeeping). A run
starts at most one tick late; readiness_scheduler_lag_seconds includes it (bench/README.md)."""
MAX_SLEEP = 3600.0
"""The timer never waits longer: it waits in monotonic time, and the wall clock that plans the
runs may be stepped meanwhile."""


class PhasedInterval(BaseTrigger):  # type: ignore[misc]
    """Every `interval` seconds, at a phase within the interval taken from a hash of the job id,
    as Prometheus offsets its scrapes: items with one interval spread evenly over it, at the
    same offsets after a restart, with no drift. (APScheduler's jitter is added to the previous
    jittered time: a 60s item ran every 62.5s on average, and 10,000 items fired in bursts.)"""

    def __init__(self, interval: float, job_id: str) -> None:
        self.interval = interval
        digest = hashlib.blake2b(job_id.encode(), digest_size=8).digest()
        self.phase = int.from_bytes(digest) / 2**64 * interval

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # After a run off the grid (the first, at startup), the next is at least half an
        # interval later: never two runs back to back.
        if previous_fire_time is None:
            after = now.timestamp()
        else:
            after = previous_fire_time.timestamp() + self.interval / 2
        return datetime.fromtimestamp(self.slot_after(after), UTC)

    def slot_after(self, after: float) -> float:
        """The first time on this trigger's grid after `after` (seconds since the epoch)."""
        return self.phase + (math.floor((after - self.phase) / self.interval) + 1) * self.interval

    def __str__(self) -> str:
        return f"every {self.interval:g}s at +{self.phase:.3f}s"


@dataclass
class _Job:
    key: ItemKey
    item: Item
    interval: timedelta | None
    """The interval it runs at (its own or the default), None for a cron item."""
    trigger: PhasedInterval | CronTrigger
    generation: int
    """Heap entries of an earlier generation (the job was rescheduled) are skipped."""


class Scheduler:
    """Keeps one job per probed item in step with the config; `run` does the work of a job.

    A heap of due times and one timer, not APScheduler's scheduler: at 10,000 items its
    add_job (signature checks, job store bookkeeping) made startup seconds long and its
    per-run machinery cost more than a tcp probe (bench/README.md). Its triggers stay.
    Time comes from `clock` and chance (the spread of first runs) from `rng`, so a test
    drives both."""

    def __init__(
        self,
        run: Callable[[ItemKey], Coroutine[Any, Any, None]],
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self._run = run
        self._clock = clock
        self._rng = rng
        self._jobs: dict[str, _Job] = {}
        self._due: list[tuple[float, int, str, int]] = []
        """(when, tie-breaker, job id, generation), a heap."""
        self._order = itertools.count()
        self._running: dict[str, asyncio.Task[None]] = {}
        """The run in flight per job: the one place that knows them, to skip and to cancel."""
        self._timer: Timer | None = None
        self._armed_for = 0.0
        """The tick the timer is set for: every run due by then starts when it fires."""
        self._started = False
        self.lag = LagHistogram()

    def start(self) -> None:
        self._started = True
        self._arm()

    async def stop(self, grace: float) -> None:
        """Stops scheduling, cancels the runs in flight and gives them `grace` seconds to
        unwind (kill their subprocesses, close sockets) before what they use is closed."""
        self._started = False
        self._arm()  # stopped: only cancels the timer
        running = list(self._running.values())
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=grace)

    def sync(
        self,
        items: Iterable[tuple[ItemKey, Item]],
        default_interval: timedelta,
        run_now: set[ItemKey],
    ) -> None:
        """Adds jobs for new items, reschedules changed ones, removes the rest. A new or
        changed interval item starts at once (jittered a little), a cron item at its next
        time unless it is in `run_now` (never run before)."""
        wanted: dict[str, tuple[ItemKey, Item]] = {
            str(key): (key, item)
            for key, item in items
            if item.kind not in PASSIVE_KINDS and not item.unconfigured
        }
        for job_id in list(self._jobs):
            if job_id not in wanted:
                del self._jobs[job_id]
        now = self._clock.now()
        for job_id, (key, item) in wanted.items():
            old = self._jobs.get(job_id)
            interval = None if item.schedule is not None else item.interval or default_interval
            # Fingerprints only when there is an old job to compare: at 10,000 items, hashing
            # every definition at startup cost half a second for nothing. A new default
            # interval moves only the items that use it.
            if (
                old is not None
                and old.interval == interval
                and (old.item is item or old.item.fingerprint == item.fingerprint)
            ):
                old.item = item
                continue
            self._add(job_id, key, item, interval, now, key in run_now, len(wanted))
        self._arm()

    def _add(
        self,
        job_id: str,
        key: ItemKey,
        item: Item,
        interval: timedelta | None,
        now: float,
        run_now: bool,
        jobs: int,
    ) -> None:
        trigger: PhasedInterval | CronTrigger
        first: float | None
        if interval is None:
            assert item.schedule is not None  # no interval: a cron item
            trigger = CronTrigger.from_crontab(item.schedule, timezone=UTC)
            if run_now:
                first = now
            else:
                following = trigger.get_next_fire_time(None, datetime.fromtimestamp(now, UTC))
                first = following.timestamp() if following is not None else None
        else:
            seconds = interval.total_seconds()
            trigger = PhasedInterval(seconds, job_id)
            # First runs spread over a short window so a large config does not stampede: up to
            # a second for 1,000 jobs or more, less for fewer (100 items start within 0.1s).
            window = min(seconds, 2.0) * 0.5 * min(jobs / FULL_SPREAD_JOBS, 1.0)
            window = max(window, min(jobs / FIRST_RUNS_PER_SECOND, seconds / 2))
            first = now + self._rng.uniform(0, window)
        old = self._jobs.get(job_id)
        job = _Job(key, item, interval, trigger, old.generation + 1 if old else 0)
        self._jobs[job_id] = job
        if first is not None:
            heapq.heappush(self._due, (first, next(self._order), job_id, job.generation))

    async def run_now(self, key: ItemKey) -> bool:
        """Runs a scheduled item at once (POST /api/v1/runs), or, when a run of it is in flight
        already, waits for that one: the same item never runs twice at a time. Its next planned
        run stays where it was. False when the item has no job (manual, unconfigured)."""
        job_id = str(key)
        if job_id not in self._jobs:
            return False
        task = self._running.get(job_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(key), name=job_id)
            self._running[job_id] = task
            task.add_done_callback(functools.partial(self._finished, job_id))
        # Shielded: a caller that gives up (a client gone) does not cancel the run for others.
        await asyncio.shield(task)
        return True

    def _arm(self) -> None:
        """Sets the one timer for the tick of the earliest due time (none when stopped or
        idle); a timer already set for that tick stays."""
        if not (self._started and self._due):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        earliest = min(self._due[0][0], self._clock.now() + MAX_SLEEP)
        # Never before the due time (a product of floats may round below it).
        when = max(math.ceil(earliest / TICK) * TICK, earliest)
        if self._timer is not None:
            if when == self._armed_for:
                return
            self._timer.cancel()
        self._armed_for = when
        self._timer = self._clock.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._fire_due(self._armed_for)
        finally:
            self._arm()

    def _fire_due(self, tick: float) -> None:
        """Starts every job due by `tick` (the timer's, or now when it fired late) and plans
        its next run."""
        now = self._clock.now()
        until = max(now, tick)
        due = self._due
        loop = asyncio.get_running_loop()
        while due and due[0][0] <= until:
            planned, _, job_id, generation = heapq.heappop(due)
            job = self._jobs.get(job_id)
            if job is None or job.generation != generation:
                continue
            self.lag.observe(now - planned)
            if job_id in self._running:
                log.warning("run_skipped_still_running", job=job_id)
            else:
                task = loop.create_task(self._run(job.key), name=job_id)
                self._running[job_id] = task
                task.add_done_callback(functools.partial(self._finished, job_id))
            following = self._following(job.trigger, planned, now)
            if following is not None:
                heapq.heappush(due, (following, next(self._order), job_id, generation))

    @staticmethod
    def _following(
        trigger: PhasedInterval | CronTrigger, planned: float, now: float
    ) -> float | None:
        """The next planned time after `now`: runs missed while the process was stopped or
        starved are coalesced into the one just started."""
        if isinstance(trigger, PhasedInterval):  # the same grid in floats, without datetimes
            following_at = trigger.slot_after(planned + trigger.interval / 2)
            while following_at <= now:
                following_at = trigger.slot_after(following_at + trigger.interval / 2)
            return following_at
        current = datetime.fromtimestamp(planned, UTC)
        at = datetime.fromtimestamp(now, UTC)
        following: datetime | None = trigger.get_next_fire_time(current, at)
        while following is not None and following.timestamp() <= now:
            following = trigger.get_next_fire_time(following, at)
        return following.timestamp() if following is not None else None

    def _finished(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._running.get(job_id) is task:
            del self._running[job_id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("job_failed", job=job_id, error=f"{type(exc).__name__}: {exc}")

    @property
    def job_count(self) -> int:
        return len(self._jobs)
