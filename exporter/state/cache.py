"""The in-memory view both stores keep: what scrapes read without touching the database."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from exporter.reasons import Reason
from exporter.results import Attestation, ItemKey, ItemState, Result, Waiver


class StateCache:
    """Latest result, last success, first seen and latest attestation per item; `version` moves
    on every change so readers can cache what they rendered from it."""

    def __init__(self) -> None:
        self.version = 0
        self._states: dict[ItemKey, ItemState] = {}
        self._revision: int | None = None
        """The attestation revision counter last read from the database."""
        self._ping_starts: dict[ItemKey, float] = {}
        """Ping runs started and not finished (the daemon restores their timeouts on start)."""
        self._log: list[ItemKey] = []
        """The keys whose state was replaced, in order, since the log last started over."""
        self._logged = 0
        """Changes before the log's first entry."""

    def states(self) -> Mapping[ItemKey, ItemState]:
        return self._states

    def changed_since(self, mark: int | None) -> tuple[list[ItemKey] | None, int]:
        """The keys whose state was replaced since `mark` (what this returned last time), and
        the mark to ask with next time; None instead of the keys when `mark` is None or from
        before the log started over (then compare every state)."""
        end = self._logged + len(self._log)
        if mark is None or mark < self._logged:
            return None, end
        return self._log[mark - self._logged :], end

    def _set(self, key: ItemKey, state: ItemState) -> None:
        self._states[key] = state
        self._log.append(key)
        # Past as many changes as there are items, reading every state is as cheap: the log
        # starts over rather than growing while nobody reads it.
        if len(self._log) > len(self._states) + 1024:
            self._logged += len(self._log)
            self._log = []

    def ping_starts(self) -> Mapping[ItemKey, float]:
        return self._ping_starts

    def _set_ping_start(self, key: ItemKey, at: float | None) -> None:
        if at is None:
            self._ping_starts.pop(key, None)
        else:
            self._ping_starts[key] = at

    def _get(self, key: ItemKey) -> ItemState:
        return self._states.get(key, ItemState())

    def _recorded(self, key: ItemKey, result: Result) -> tuple[float | None, float]:
        """The last success and first seen an item has after `result`."""
        old = self._get(key)
        last_success = result.started_at if result.passing else old.last_success
        first_seen = old.first_seen if old.first_seen is not None else result.started_at
        return last_success, first_seen

    def _set_result(
        self, key: ItemKey, result: Result, last_success: float | None, first_seen: float
    ) -> None:
        self._set(
            key,
            replace(
                self._get(key), result=result, last_success=last_success, first_seen=first_seen
            ),
        )
        self.version += 1

    def _untracked(self, keys: Iterable[ItemKey]) -> list[ItemKey]:
        return [k for k in keys if self._get(k).first_seen is None]

    def _set_first_seen(self, keys: Iterable[ItemKey], now: float) -> None:
        for key in keys:
            self._set(key, replace(self._get(key), first_seen=now))
        self.version += 1

    def _load_row(self, row: Any) -> None:
        key = ItemKey(row[0], row[1])
        self._set(
            key,
            replace(self._get(key), result=result_of(row), last_success=row[9], first_seen=row[10]),
        )

    def _apply(self, attestation: Attestation) -> None:
        """Makes `attestation` the item's latest; for a manual item it is also its success."""
        key = ItemKey(attestation.checklist, attestation.item)
        old = self._get(key)
        if old.attestation is not None and old.attestation.id == attestation.id:
            return
        self._set(
            key,
            replace(
                old,
                attestation=attestation,
                last_success=max(old.last_success or 0, attestation.at),
            ),
        )
        self.version += 1

    def _set_waivers(self, waivers: Mapping[ItemKey, tuple[Waiver, ...]]) -> None:
        """Replaces every item's open waivers with `waivers` (all of them, as reloaded)."""
        for key in {*waivers, *(k for k, s in self._states.items() if s.waivers)}:
            self._set(key, replace(self._get(key), waivers=waivers.get(key, ())))
        self.version += 1

    def _saw_revision(self, revision: int) -> None:
        """After our own write bumped the counter to `revision`: stay current only when no
        other writer came in between (else the next refresh reloads)."""
        if self._revision is not None and revision == self._revision + 1:
            self._revision = revision


def result_row(
    key: ItemKey, result: Result, last_success: float | None, first_seen: float
) -> tuple[Any, ...]:
    return (
        key.checklist,
        key.item,
        int(result.passing),
        result.reason.value,
        result.started_at,
        result.duration,
        json.dumps(result.facts, default=str),
        json.dumps(result.failed),
        result.message,
        last_success,
        first_seen,
    )


def result_of(row: Any) -> Result | None:
    passing, reason, started_at, duration, facts, failed, message = tuple(row)[2:9]
    if reason is None:
        return None
    return Result(
        passing=bool(passing),
        reason=Reason(reason),
        started_at=started_at,
        duration=duration,
        facts=json.loads(facts or "{}"),
        failed=tuple(json.loads(failed or "[]")),
        message=message or "",
    )


def attestation_of(row: Any) -> Attestation:
    id_, checklist, item, by, note, at, fingerprint, token = tuple(row)
    return Attestation(
        checklist=checklist,
        item=item,
        by=by,
        at=at,
        fingerprint=fingerprint,
        note=note,
        token=token,
        id=id_,
    )


def attestation_row(attestation: Attestation) -> tuple[Any, ...]:
    a = attestation
    return (a.checklist, a.item, a.by, a.note, a.at, a.fingerprint, a.token)
