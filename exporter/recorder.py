"""Turns what the daemon sees into item history: after each run, and on a timer for the changes
no run makes (a lapse, a waiver taking effect or expiring), every item whose state changed gets
a record; records older than the retention are pruned in the background.

Records are appended one batch at a time: what arrives while a batch is being written goes into
the next, so the first runs of 10,000 items make a few transactions, not 10,000 (each waiting
in the store's queue with its run: bench/README.md, 21)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from exporter.dependencies import blocked_by
from exporter.evaluate import ItemView, can_be_blocked, item_view
from exporter.history import DEFINED, Change, state_of
from exporter.redact import Redactor
from exporter.results import ItemKey, ItemState
from exporter.state import Store, StoreUnavailable

if TYPE_CHECKING:
    from exporter.config import Checklist, Config, Item, Section

log = structlog.get_logger("exporter.history")

PRUNE_EVERY = 3600.0
"""Seconds between retention prunes."""


class Recorder:
    def __init__(self, store: Store, redactor: Redactor) -> None:
        self.store = store
        self.redactor = redactor
        self._places: dict[ItemKey, tuple[Checklist, Section, Item]] = {}
        self._seen: dict[ItemKey, tuple[str, str]] = {}
        """The last state recorded (or found recorded) per item: only a change is written."""
        self._pruned_at: float | None = None
        self._pending: list[Change] = []
        """Changes waiting for the batch after the one being written."""
        self._appended: asyncio.Future[None] | None = None
        """Resolved once the pending changes are written (or their write failed, logged)."""
        self._writer: asyncio.Task[None] | None = None

    def track(self, config: Config) -> None:
        """The items to record (at start and after each reload)."""
        self._places = {
            ItemKey(c.name, i.id): (c, s, i)
            for c in config.checklists
            for s in c.sections
            for i in s.items
        }

    async def define(self, now: float) -> None:
        """Records each item's definition (its fingerprint) as the daemon loaded it: the store
        keeps only the new ones, the definition changes an evidence report lists."""
        await self._append(
            [
                Change(key.checklist, key.item, now, DEFINED, item.fingerprint, _definition(item))
                for key, (_, _, item) in self._places.items()
            ]
        )

    async def observe(self, key: ItemKey, states: Mapping[ItemKey, ItemState], at: float) -> None:
        """After a run of `key` that started `at`."""
        place = self._places.get(key)
        if place is not None:
            await self._record([self._view(key, states, at)], at)

    async def tick(self, states: Mapping[ItemKey, ItemState], now: float, retention: float) -> None:
        """Every item as the clock has it now; and once an hour, the retention prune."""
        views = (self._view(key, states, now) for key in self._places)
        await self._record(views, now)
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            try:
                pruned = await self.store.prune(now - retention)
            except StoreUnavailable as exc:
                log.warning("history_prune_failed", error=self.redactor.text(str(exc)))
                return
            if pruned:
                log.info("history_pruned", records=pruned)

    def _view(self, key: ItemKey, states: Mapping[ItemKey, ItemState], now: float) -> ItemView:
        """The item as evaluate judges it, blocked by its failing dependencies included."""
        view = item_view(*self._places[key], states.get(key), now)
        if not can_be_blocked(view):
            return view

        def passing(dependency: ItemKey) -> bool | None:
            place = self._places.get(dependency)
            return None if place is None else item_view(*place, states.get(dependency), now).passing

        return replace(view, blocked_by=blocked_by(key.checklist, view.item.depends_on, passing))

    async def _record(self, views: Iterable[ItemView], at: float) -> None:
        changes = []
        for view in views:
            state = state_of(view)
            if state is not None and self._seen.get(view.key) != state:
                changes.append(Change(view.key.checklist, view.key.item, at, *state))
        await self._append(changes)

    async def _append(self, changes: list[Change]) -> None:
        """Appends `changes` with the batch after the one being written; returns once that
        batch is written, or its failure logged."""
        if not changes:
            return  # no batch to wait for (a config, or a shard, with no items)
        self._pending += changes
        if self._appended is None:
            self._appended = asyncio.get_running_loop().create_future()
        appended = self._appended
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())
        # A run cancelled while it waits (shutdown) leaves its changes in the batch.
        await asyncio.shield(appended)

    async def flush(self, timeout: float) -> None:
        """Waits (at most `timeout` seconds) for the batches queued to be written: at shutdown,
        before the store closes under them."""
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=timeout)

    async def _write(self) -> None:
        try:
            while self._pending:
                changes, appended = self._pending, self._appended
                self._pending, self._appended = [], None
                assert appended is not None
                try:
                    await self._store(changes)
                except asyncio.CancelledError:
                    appended.cancel()
                    raise
                except Exception as exc:  # not the store's: a bug, for whoever waits to see
                    appended.set_exception(exc)
                    appended.add_done_callback(_retrieved)
                else:
                    appended.set_result(None)
        finally:
            self._writer = None
            if self._appended is not None and self._pending:
                self._appended.cancel()  # cancelled with the loop: nobody writes them now
                self._pending, self._appended = [], None

    async def _store(self, changes: list[Change]) -> None:
        try:
            await self.store.append(changes)
        except StoreUnavailable as exc:
            # States not marked seen: the next tick tries again, with the time it then has.
            log.warning(
                "history_write_failed", error=self.redactor.text(str(exc)), changes=len(changes)
            )
            return
        for change in changes:
            if change.is_state:
                self._seen[ItemKey(change.checklist, change.item)] = (change.state, change.reason)


def _retrieved(future: asyncio.Future[None]) -> None:
    future.exception()


def _definition(item: Item) -> str:
    return json.dumps({"title": item.title, "kind": item.kind}, sort_keys=True)
