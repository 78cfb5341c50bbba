"""One APScheduler job per probed item: interval or cron, jittered, never overlapping itself."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from exporter.config import Item
from exporter.lag import LagHistogram
from exporter.results import ItemKey

MAX_JITTER = 5.0
"""Seconds at most that a run is shifted, so items with one interval do not fire in lockstep."""


class Scheduler:
    """Keeps one job per probed item in step with the config; `run` does the work of a job."""

    def __init__(self, run: Callable[[ItemKey], Awaitable[None]]) -> None:
        self._run = run
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._fingerprints: dict[str, str] = {}
        self.lag = LagHistogram()
        self._aps.add_listener(self._submitted, EVENT_JOB_SUBMITTED)

    def start(self) -> None:
        self._aps.start()

    def _submitted(self, event: JobSubmissionEvent) -> None:
        # The earliest planned time: a coalesced run is as late as the first run it stands for.
        self.lag.observe_since(event.scheduled_run_times[0].timestamp())

    def shutdown(self) -> None:
        """Stops scheduling and cancels jobs in flight (APScheduler's asyncio executor does)."""
        if self._aps.running:
            self._aps.shutdown(wait=False)

    def sync(
        self,
        items: Iterable[tuple[ItemKey, Item]],
        default_interval: timedelta,
        run_now: set[ItemKey],
    ) -> None:
        """Adds jobs for new items, reschedules changed ones, removes the rest.
        Items in `run_now` (never run before) start at once, jittered a little."""
        wanted: dict[str, tuple[ItemKey, Item]] = {
            str(key): (key, item) for key, item in items if item.kind != "manual"
        }
        for job_id in list(self._fingerprints):
            if job_id not in wanted:
                self._aps.remove_job(job_id)
                del self._fingerprints[job_id]
        for job_id, (key, item) in wanted.items():
            fingerprint = f"{item.fingerprint}/{default_interval}"
            if self._fingerprints.get(job_id) == fingerprint:
                continue
            if job_id in self._fingerprints:
                self._aps.remove_job(job_id)
            self._add(job_id, key, item, default_interval, key in run_now)
            self._fingerprints[job_id] = fingerprint

    def _add(
        self, job_id: str, key: ItemKey, item: Item, default_interval: timedelta, run_now: bool
    ) -> None:
        now = datetime.now(UTC)
        trigger: IntervalTrigger | CronTrigger
        if item.schedule is not None:
            trigger = CronTrigger.from_crontab(item.schedule, timezone=UTC)
            first = now if run_now else trigger.get_next_fire_time(None, now)
        else:
            interval = (item.interval or default_interval).total_seconds()
            jitter = min(interval * 0.1, MAX_JITTER)
            trigger = IntervalTrigger(seconds=interval, jitter=jitter or None, timezone=UTC)
            # First runs spread over a short window so a large config does not stampede.
            first = now + timedelta(seconds=random.uniform(0, min(interval, 2.0) * 0.5))
        self._aps.add_job(
            self._run,
            trigger,
            args=[key],
            id=job_id,
            name=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=first,
        )

    @property
    def job_count(self) -> int:
        return len(self._fingerprints)
