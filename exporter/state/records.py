"""The audit records both stores keep the same way: attestations, the history chain and waivers,
read and written through three primitives each store implements in its dialect."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from exporter.history import Change
from exporter.results import Attestation, Waiver
from exporter.state import Snapshot, audit
from exporter.state.cache import StateCache, attestation_of

Query = tuple[str, tuple[Any, ...]]
T = TypeVar("T")


class AuditRecords(StateCache):
    async def _read(self, *queries: Query) -> list[list[Any]]:
        """The rows of each of `queries` (audit SQL), read in one snapshot of the store (what
        a writer commits meanwhile is in all of them or in none) within the store's
        deadline; StoreUnavailable when they cannot be."""
        raise NotImplementedError

    async def _transact(
        self, durable: bool, steps: Callable[[], audit.Steps[T]]
    ) -> tuple[T, int | None]:
        """Runs the audit write `steps()` makes (audit.transaction) in one transaction, synced
        before it returns when `durable`; StoreUnavailable when it did not commit,
        OutcomeUnknown when it may have."""
        raise NotImplementedError

    async def _audit(self, durable: bool, steps: Callable[[], audit.Steps[T]]) -> T:
        out, revision = await self._transact(durable, steps)
        if revision is not None:
            self._saw_revision(revision)
        return out

    async def _reload(self) -> None:
        """After our own waiver write: the open waivers as they now are."""
        raise NotImplementedError

    async def attest(self, attestation: Attestation) -> Attestation:
        recorded = await self._audit(True, lambda: audit.attest(attestation))
        self._apply(recorded)
        return recorded

    async def attestations(
        self, checklist: str | None, item: str | None, limit: int
    ) -> list[Attestation]:
        [rows] = await self._read(_attestations(checklist, item, limit))
        return [attestation_of(row) for row in rows]

    async def append(self, changes: Sequence[Change], durable: bool = False) -> list[Change]:
        if not changes:
            return []
        return await self._audit(durable, lambda: audit.chain(list(changes)))

    async def history(
        self,
        checklist: str | None,
        item: str | None,
        since: float | None,
        until: float | None,
        limit: int,
        prior: bool = False,
    ) -> list[Change]:
        queries = [(audit.HISTORY, (*audit.filters(checklist, item, since, until), limit))]
        if prior and since is not None:
            queries.insert(0, (audit.PRIOR, (since, checklist, checklist, item, item)))
        return [audit.change_of(row) for rows in await self._read(*queries) for row in rows]

    async def history_head(self) -> tuple[int, str]:
        [[head]] = await self._read((audit.HEAD, ()))
        return _head(head)

    async def snapshot(self, limit: int) -> Snapshot:
        heads, history, attestations, waivers = await self._read(
            (audit.HEAD, ()),
            (audit.HISTORY, (*audit.filters(None, None, None, None), limit)),
            _attestations(None, None, limit),
            _waivers(None, None, limit, None),
        )
        return Snapshot(
            _head(heads[0]),
            [audit.change_of(row) for row in history],
            [attestation_of(row) for row in attestations],
            [audit.waiver_of(row) for row in waivers],
        )

    async def prune(self, before: float) -> int:
        return await self._audit(False, lambda: audit.prune(before))

    async def request_waiver(self, waiver: Waiver) -> Waiver:
        recorded = await self._audit(True, lambda: audit.request_waiver(waiver))
        await self._reload()
        return recorded

    async def decide_waiver(
        self, id_: int, decision: Literal["approve", "revoke"], by: str, at: float
    ) -> Waiver:
        decided = await self._audit(True, lambda: audit.decide_waiver(id_, decision, by, at))
        await self._reload()
        return decided

    async def waivers(
        self, checklist: str | None, item: str | None, limit: int, id_: int | None = None
    ) -> list[Waiver]:
        [rows] = await self._read(_waivers(checklist, item, limit, id_))
        return [audit.waiver_of(row) for row in rows]


def _attestations(checklist: str | None, item: str | None, limit: int) -> Query:
    return audit.ATTESTATIONS, (checklist, checklist, item, item, limit)


def _waivers(checklist: str | None, item: str | None, limit: int, id_: int | None) -> Query:
    return audit.WAIVERS, (checklist, checklist, item, item, id_, id_, limit)


def _head(row: Any) -> tuple[int, str]:
    last_id, last_hash = row
    return int(last_id), str(last_hash)
