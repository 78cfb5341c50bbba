"""Turns what the daemon sees into item history: after each run, and on a timer for the changes
no run makes (a lapse, a waiver taking effect or expiring), every item whose state changed gets
a record; records older than the retention are pruned in the background."""

from __future__ import annotations

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
        changes = [
            Change(key.checklist, key.item, now, DEFINED, item.fingerprint, _definition(item))
            for key, (_, _, item) in self._places.items()
        ]
        try:
            await self.store.append(changes)
        except StoreUnavailable as exc:
            log.warning(
                "history_write_failed", error=self.redactor.text(str(exc)), changes=len(changes)
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
        if not changes:
            return
        try:
            await self.store.append(changes)
        except StoreUnavailable as exc:
            # Not marked seen: the next tick tries again, with the time it then has.
            log.warning(
                "history_write_failed", error=self.redactor.text(str(exc)), changes=len(changes)
            )
            return
        for change in changes:
            self._seen[ItemKey(change.checklist, change.item)] = (change.state, change.reason)


def _definition(item: Item) -> str:
    return json.dumps({"title": item.title, "kind": item.kind}, sort_keys=True)
