"""What every probe module shares: the facts it returns, the context it gets, how it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from exporter.clock import Clock, SystemClock
from exporter.reasons import Reason

# Re-exported: the probes take the plain data from here, with the rest of what they share.
from exporter.results import Facts as Facts
from exporter.results import FactValue as FactValue

T = TypeVar("T")

BUDGET_SHARE = 0.9
"""Of the runner's timeout, what a probe spends before it gives up and reports itself, so it
can still return the facts it has (`connected: false`) before the runner's hard timeout."""


class ProbeSpec(BaseModel):
    """Base of every kind's `Spec`: strict and frozen, so a YAML typo is an error with its line."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeFailure(Exception):
    """Raised by a probe that could not measure, with the reason on-call should see.

    `facts` holds whatever was measured before the failure (e.g. `connected: false`)."""

    def __init__(self, reason: Reason, message: str, facts: Facts | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.facts: Facts = dict(facts or {})


@dataclass
class Resources:
    """Long-lived clients shared between probe runs (HTTP clients, connection pools),
    keyed by what makes them distinct; all closed once at shutdown."""

    _items: dict[Any, Any] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(
        self,
        key: Any,
        factory: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        if key in self._items:
            return self._items[key]  # type: ignore[no-any-return]
        async with self._lock:
            if key not in self._items:
                value = await factory()
                self._items[key] = value
                if close is not None:
                    self._closers.append(lambda: close(value))
            return self._items[key]  # type: ignore[no-any-return]

    def forget(self, key: Any, value: Any = None) -> None:
        """Drops a cached client (a pool whose server went away): the next run makes a new one.
        With `value`, only while that is still the cached one: a concurrent run may have
        replaced it already."""
        if value is None or self._items.get(key) is value:
            self._items.pop(key, None)

    async def aclose(self) -> None:
        closers, self._closers = self._closers, []
        self._items.clear()
        for closer in reversed(closers):
            try:
                await closer()
            except Exception:  # noqa: S112 - closing is best effort at shutdown
                continue


@dataclass
class ProbeContext:
    """What a probe may use besides its spec: the clock, its time budget and shared clients."""

    timeout: float
    clock: Clock = field(default_factory=SystemClock)
    resources: Resources = field(default_factory=Resources)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and the members of exception groups, each once: client
    libraries wrap the socket's own error (which names the reason) a few levels down."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
