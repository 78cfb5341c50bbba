"""The audit service the web edge is handed: item history (and, from the status page, each
item's recent changes and passing shares) over the store, with the clock in use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from exporter import waivers
from exporter.clock import Clock
from exporter.history import Change
from exporter.results import Waiver
from exporter.state import Store, StoreUnavailable
from exporter.waivers import WaiverRequest

if TYPE_CHECKING:
    from exporter.config import Config

STATUS_HISTORY_LIMIT = 100_000
"""History records /status reads at most (the last 30 days of every item)."""
RECENT_DAYS = 30


class AuditService:
    """History and waivers against the config in use (`config` is read per call, so a reload
    counts) and the store."""

    def __init__(self, store: Store, config: Callable[[], Config], clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def now(self) -> float:
        return self.clock.now()

    async def request_waiver(self, request: WaiverRequest, token: str | None) -> Waiver:
        return await waivers.request(self.store, self.config(), request, token, self.now())

    async def decide_waiver(
        self, id_: int, decision: Literal["approve", "revoke"], token: str
    ) -> Waiver:
        return await waivers.decide(self.store, id_, decision, token, self.now())

    async def waivers(self, checklist: str | None, item: str | None, limit: int) -> list[Waiver]:
        return await self.store.waivers(checklist, item, limit)

    async def history(
        self, checklist: str | None, item: str | None, since: float | None, until: float | None,
        limit: int,
    ) -> list[Change]:  # fmt: skip
        return await self.store.history(checklist, item, since, until, limit)

    async def recent(self, now: float) -> list[Change] | None:
        """The last 30 days of records, with each item's state before them (for the status
        page's changes and passing shares); None when the store cannot answer."""
        try:
            return await self.store.history(
                None, None, now - RECENT_DAYS * 86400, None, STATUS_HISTORY_LIMIT, prior=True
            )
        except StoreUnavailable:
            return None
