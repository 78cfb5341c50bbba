"""One APScheduler job per probed item: interval (phased) or cron, never overlapping itself."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from exporter.config import Item
from exporter.lag import LagHistogram
from exporter.results import ItemKey


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
        slot = math.floor((after - self.phase) / self.interval) + 1
        return datetime.fromtimestamp(self.phase + slot * self.interval, UTC)

    def __str__(self) -> str:
        return f"every {self.interval:g}s at +{self.phase:.3f}s"


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
        trigger: PhasedInterval | CronTrigger
        if item.schedule is not None:
            trigger = CronTrigger.from_crontab(item.schedule, timezone=UTC)
            first = now if run_now else trigger.get_next_fire_time(None, now)
        else:
            interval = (item.interval or default_interval).total_seconds()
            trigger = PhasedInterval(interval, job_id)
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
