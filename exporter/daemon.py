"""Wires config, store, runner and scheduler into the long-running daemon, and reloads it."""

from __future__ import annotations

import asyncio
import functools
import os
import random
from collections import Counter
from collections.abc import Iterator, Mapping

import structlog

from exporter import pings
from exporter.clock import Clock, SystemClock, Timer
from exporter.config import Config, Item
from exporter.loader import ConfigError, ConfigIssue, LoadedConfig, load_config
from exporter.pings import PingRequest
from exporter.recorder import Recorder
from exporter.redact import Redactor
from exporter.results import PASSIVE_KINDS, PING, ItemKey, ItemState, Result, Severity
from exporter.runner import Runner, masked
from exporter.scheduler import Scheduler
from exporter.shard import ALL, Shard
from exporter.state import Store, open_store
from exporter.web.auth import Tokens

log = structlog.get_logger("exporter.daemon")

STOP_GRACE = 5.0
"""Seconds that cancelled probes get to unwind at shutdown."""
HISTORY_EVERY = 10.0
"""Seconds between history ticks: how late a lapse or a waiver's expiry is recorded at most."""
WATCH_EVERY = 5.0
"""Seconds between the watchdog's store checks: a fault is logged and turns /health/ready to
503 even while nobody asks, and a store that answers again is used again."""


def config_items(config: Config) -> Iterator[tuple[ItemKey, Item]]:
    for checklist in config.checklists:
        for section in checklist.sections:
            for item in section.items:
                yield ItemKey(checklist.name, item.id), item


def load_tokens(loaded: LoadedConfig) -> Tokens:
    """The config's API tokens with their secrets from the environment; ConfigError if any
    secret is missing, so a daemon never runs with a token nobody can use."""
    try:
        return Tokens.from_config(loaded.config.exporter.api_tokens, os.environ)
    except ValueError as exc:
        raise ConfigError(
            [ConfigIssue(loaded.path, None, None, line) for line in str(exc).splitlines()]
        ) from None


class Daemon:
    """The running exporter. Metrics and /status read it; nothing in it knows about HTTP."""

    def __init__(
        self,
        loaded: LoadedConfig,
        clock: Clock | None = None,
        tokens: Tokens | None = None,
        shard: Shard = ALL,
        rng: random.Random | None = None,
    ) -> None:
        """`clock` and `rng` (the spread of first runs) are parameters so tests can drive them."""
        self.clock: Clock = clock or SystemClock()
        self.shard = shard
        loaded = shard.select(loaded)
        self.loaded = loaded
        self.redactor = Redactor(loaded.secrets)
        """This daemon's own: its config's secrets, masked in results, store errors, logs and
        every page; a reload updates it in place, so whoever holds it masks the new ones."""
        self.store: Store = open_store(loaded.config.exporter.state, self.redactor)
        self.runner = Runner(
            loaded.config.exporter.max_concurrency, self.clock, redactor=self.redactor
        )
        self.scheduler = Scheduler(self.run_item, self.clock, rng or random.Random())
        self._items: dict[ItemKey, Item] = {}
        self._probed: dict[ItemKey, tuple[Item, float]] = {}
        """What run_item reads per run: each probed, configured item with its timeout."""
        self._index(loaded.config)
        self.opened = False
        self.started = False
        self._reload_ok = True
        self._reload_ts = self.clock.now()
        self._reload_lock = asyncio.Lock()
        """One reload at a time, in the order asked (SIGHUP and POST /-/reload alike), so the
        reload metrics describe the last attempt rather than the last to finish."""
        self._watchdog: asyncio.Task[None] | None = None
        self.recorder = Recorder(self.store, self.redactor)
        self._chronicle: asyncio.Task[None] | None = None
        self.reload_errors: list[str] = []
        self.tokens = tokens or Tokens()
        """The API's tokens (`serve` loads them with load_tokens); none: reads open, no writes."""
        self._started: dict[ItemKey, tuple[float, Timer | None]] = {}
        """Ping items whose job sent `start` and has not finished: when, and the timer that
        fails the item as `timeout` if it never does. The store keeps the starts too, so a
        restarted daemon arms the timers again (`_restore_starts`)."""
        self._writes: set[asyncio.Task[None]] = set()

    # --- what the metrics collector and /status read ---------------------------------
    @property
    def config(self) -> Config:
        return self.loaded.config

    def states(self) -> Mapping[ItemKey, ItemState]:
        return self.store.states()

    def changed_since(self, mark: int | None) -> tuple[list[ItemKey] | None, int]:
        """The store's change feed (StateCache.changed_since): /metrics re-renders those."""
        return self.store.changed_since(mark)

    @property
    def runs(self) -> Counter[tuple[str, str]]:
        return self.runner.runs

    @property
    def reload_successful(self) -> bool:
        return self._reload_ok

    @property
    def reload_timestamp(self) -> float:
        return self._reload_ts

    @property
    def state_write_errors(self) -> tuple[str, int]:
        """The store's label and its failed writes (readiness_state_write_errors_total)."""
        return self.store.store_name, self.store.write_errors

    async def refresh(self) -> None:
        """Picks up attestations written elsewhere (CLI, replicas) before a scrape; a store
        that does not answer leaves the last known state in place."""
        try:
            await self.store.refresh()
        except Exception as exc:
            log.warning("state_refresh_failed", error=self.redactor.text(str(exc)))

    # --- lifecycle ---------------------------------------------------------------------
    async def open(self, exclusive: bool = True) -> None:
        """Opens the store (StateError when it cannot be used); a scheduling daemon holds the
        state exclusively. `serve` opens it before it listens and schedules once listening, so
        /health/live answers while 10,000 items are being scheduled."""
        await self.store.open(exclusive=exclusive)
        self.opened = True

    async def start(self, schedule: bool = True) -> None:
        """Opens the store unless open and, unless `schedule` is false (a one-shot `check`),
        starts the jobs."""
        if not self.opened:
            await self.open(exclusive=schedule)
        if schedule:
            self.scheduler.start()
            await self._apply()
            self._restore_starts()
            self._watchdog = asyncio.create_task(self._watch())
            self._chronicle = asyncio.create_task(self._record_history())
        else:
            await self.store.track(self._items, self.clock.now())
        self.started = True
        log.info(
            "daemon_started",
            config=self.loaded.path,
            items=len(self._items),
            scheduled=self.scheduler.job_count,
            shard=str(self.shard),
        )

    async def stop(self) -> None:
        """Stops scheduling, cancels probes in flight, closes clients, flushes the store."""
        self.started = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        for _, timer in self._started.values():
            if timer is not None:
                timer.cancel()
        self._started.clear()
        if self._writes:
            await asyncio.wait(self._writes, timeout=STOP_GRACE)
        if self._chronicle is not None:
            self._chronicle.cancel()
        # Cancelled probes clean up (kill their subprocesses, close sockets) before the
        # shared clients and the store close under them.
        await self.scheduler.stop(STOP_GRACE)
        await self.runner.resources.aclose()
        # The history changes of the last runs, queued behind the batch being written.
        await self.recorder.flush(STOP_GRACE)
        await self.store.close()
        self.opened = False
        log.info("daemon_stopped")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            await self.store.ping()

    async def _record_history(self) -> None:
        while True:
            await self.history_tick()
            await asyncio.sleep(HISTORY_EVERY)

    async def history_tick(self) -> None:
        """Records the changes the clock made (lapses, waivers), and prunes past retention."""
        await self.refresh()
        retention = self.config.exporter.history_retention.total_seconds()
        await self.recorder.tick(self.store.states(), self.clock.now(), retention)

    async def _apply(self) -> None:
        self.recorder.track(self.config)
        await self.recorder.define(self.clock.now())
        states = self.store.states()
        await self.store.track(self._items, self.clock.now())
        never_run = {k for k in self._items if (s := states.get(k)) is None or s.result is None}
        exporter = self.config.exporter
        self.scheduler.sync(self._items.items(), exporter.default_interval, never_run)

    async def reload(self) -> bool:
        """Re-reads the config file. A broken file keeps the old config running."""
        async with self._reload_lock:
            return await self._reload()

    async def _reload(self) -> bool:
        try:
            # Off the event loop: a large (or hostile) file must not stall /metrics meanwhile.
            loaded = self.shard.select(await asyncio.to_thread(load_config, self.loaded.path))
            tokens = load_tokens(loaded)
        except ConfigError as exc:
            self._reload_ok = False
            self.reload_errors = [self.redactor.text(str(issue)) for issue in exc.issues]
            for error in self.reload_errors:
                log.error("config_reload_failed", error=error)
            return False
        old = self.config.exporter
        new = loaded.config.exporter
        for name in ("listen", "state"):
            if getattr(old, name) != getattr(new, name):
                log.warning("config_change_needs_restart", setting=name)
        if old.max_concurrency != new.max_concurrency:
            self.runner.resize(new.max_concurrency)
        self.loaded = loaded
        self.tokens = tokens
        self.reload_errors = []
        self._index(loaded.config)
        await self._forget_gone_starts()
        self.redactor.update(loaded.secrets)
        await self._apply()
        self._reload_ok = True
        self._reload_ts = self.clock.now()
        log.info("config_reloaded", items=len(self._items))
        return True

    def _index(self, config: Config) -> None:
        self._items = dict(config_items(config))
        default = config.exporter.default_timeout
        self._probed = {
            key: (item, (item.timeout or default).total_seconds())
            for key, item in self._items.items()
            if item.kind not in PASSIVE_KINDS and not item.unconfigured
        }

    async def run_all(self, checklists: set[str] | None = None) -> None:
        """Runs every probed item once, concurrently within the bound (for `check`)."""
        await asyncio.gather(
            *(
                self.run_item(key)
                for key in self._probed
                if checklists is None or key.checklist in checklists
            )
        )

    async def run_now(self, keys: tuple[ItemKey, ...]) -> None:
        """Runs these items at once (POST /api/v1/runs), within the concurrency bound; an item
        whose scheduled run is in flight is not run twice: that run's result is awaited."""
        await asyncio.gather(*(self.scheduler.run_now(key) for key in keys))

    def running(self) -> dict[ItemKey, float]:
        """Ping items whose job started and has not reported yet, with when it started."""
        return {key: started for key, (started, _) in self._started.items()}

    async def ping(self, key: ItemKey, item: Item, request: PingRequest) -> Result | None:
        """A job's report on a `ping` item: `start` arms the item's timeout; `success` or
        `fail` records the run's result (and returns it)."""
        now = self.clock.now()
        started = self._started.pop(key, None)
        if started is not None and started[1] is not None:
            started[1].cancel()
        if request.status == "start":
            self._arm(key, item, now)
            await self.store.set_ping_start(key, now)
            log.info("ping_started", checklist=key.checklist, item=key.item)
            return None
        # Whoever saw the start (this daemon before a restart, or a replica sharing the
        # store), the run is over.
        await self.store.set_ping_start(key, None)
        result = masked(pings.finished(item, request, now), self.redactor)
        before = self.store.states().get(key)
        await self.store.record(key, result)
        previous = before.result if before is not None else None
        (log.warning if _starts_failing(item, previous, result) else log.info)(
            "ping_finished",
            checklist=key.checklist,
            item=key.item,
            status=request.status,
            passing=result.passing,
        )
        return result

    def _arm(self, key: ItemKey, item: Item, at: float) -> None:
        """Notes a run of a ping item started at `at`; with a `timeout`, arms the timer that
        fails the item if the run has not finished by then (at once when that is past)."""
        timer = None
        if item.timeout is not None:
            timeout = item.timeout.total_seconds()
            timer = self.clock.call_at(
                at + timeout, functools.partial(self._ping_overdue, key, at, timeout)
            )
        self._started[key] = (at, timer)

    def _restore_starts(self) -> None:
        """On start: the runs the store holds as started (before a restart) are watched again.
        A start of an item not in this config (another shard's, or removed) is left alone."""
        for key, at in self.store.ping_starts().items():
            item = self._items.get(key)
            if item is not None and item.kind == PING and key not in self._started:
                self._arm(key, item, at)

    async def _forget_gone_starts(self) -> None:
        """After a reload: a started run of an item that is gone, or no longer a ping item,
        is forgotten and its timer disarmed (it must not record a timeout for a key that no
        longer exists)."""
        for key in list(self._started):
            item = self._items.get(key)
            if item is None or item.kind != PING:
                _, timer = self._started.pop(key)
                if timer is not None:
                    timer.cancel()
                await self.store.set_ping_start(key, None)

    def _ping_overdue(self, key: ItemKey, started_at: float, timeout: float) -> None:
        if self._started.get(key, (None,))[0] != started_at:
            return  # finished, or started again, meanwhile
        del self._started[key]
        log.warning("ping_timed_out", checklist=key.checklist, item=key.item, timeout=timeout)
        write = asyncio.get_running_loop().create_task(
            self._time_out(key, pings.timed_out(key, started_at, timeout))
        )
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _time_out(self, key: ItemKey, result: Result) -> None:
        if key not in self._started:  # not started again meanwhile
            await self.store.set_ping_start(key, None)
        await self.store.record(key, result)

    # --- one job -------------------------------------------------------------------------
    async def run_item(self, key: ItemKey) -> None:
        probed = self._probed.get(key)
        if probed is None:  # gone, passive or unconfigured since it was scheduled
            return
        item, timeout = probed
        before = self.store.states().get(key)
        result = await self.runner.run(item, timeout)
        await self.store.record(key, result)
        await self.recorder.observe(key, self.store.states(), result.started_at)
        previous = before.result if before is not None else None
        if not result.passing:
            (log.warning if _starts_failing(item, previous, result) else log.info)(
                "probe_failed",
                checklist=key.checklist,
                item=key.item,
                severity=item.severity.value,
                kind=item.kind,
                reason=result.reason.value,
                failed=list(result.failed),
                message=result.message,
            )
        elif previous is not None and not previous.passing:
            log.info("item_recovered", checklist=key.checklist, item=key.item)


def _starts_failing(item: Item, previous: Result | None, result: Result) -> bool:
    """A critical or warning item that starts failing is worth a look (logged at `warning`); a
    run that goes on failing, or an advisory (info) item, is not (`info`)."""
    starts = previous is None or previous.passing
    return not result.passing and starts and item.severity is not Severity.INFO
