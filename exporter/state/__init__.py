"""Durable state: the latest result and last success per item, restored on restart.

One `Store` interface, chosen by the `state:` URL; SQLite is the embedded default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from exporter.results import ItemKey, ItemState, Result


class Store(Protocol):
    version: int
    """Bumped on every change, so readers can cache what they rendered from the state."""

    async def open(self) -> None:
        """Connects, creates or migrates the schema, and loads the state into memory."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True while the backing database answers (for /health/ready)."""

    async def record(self, key: ItemKey, result: Result) -> None:
        """Stores a run's result; a passing one also moves the item's last success."""

    async def track(self, keys: Iterable[ItemKey], now: float) -> None:
        """Notes when items were first seen (the base of a new recurring item's due time)."""

    def states(self) -> Mapping[ItemKey, ItemState]:
        """The in-memory view read at scrape time; never blocks on I/O."""


def open_store(url: str) -> Store:
    """The store for a `state:` URL, as SQLAlchemy spells them: `sqlite:///relative.db`,
    `sqlite:////absolute/path.db`, `sqlite:///:memory:`."""
    if url.startswith("sqlite://"):
        from exporter.state.sqlite import SqliteStore

        path = url.removeprefix("sqlite://")
        return SqliteStore(path.removeprefix("/") or ":memory:")
    raise ValueError(f"unsupported state URL {url!r}: use sqlite:///path/to/state.db")
