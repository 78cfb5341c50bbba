"""What every probe module shares: the facts it returns, the context it gets (with its deadline),
how it fails, and the one map from exceptions to reasons."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from exporter.clock import Clock, SystemClock
from exporter.reasons import Reason
from exporter.redact import credentials

# Re-exported: the probes take the plain data from here, with the rest of what they share.
from exporter.results import Facts as Facts
from exporter.results import FactValue as FactValue
from exporter.units import parse_duration

T = TypeVar("T")

BUDGET_SHARE = 0.9
"""Of the runner's timeout, what a probe spends before it gives up and reports itself, so it
can still return the facts it has (`connected: false`) before the runner's hard timeout."""
MIN_WAIT = 0.001
"""Seconds a step still gets when the deadline has passed: zero would mean "no limit" to some
clients."""


def _seconds(value: object) -> object:
    return parse_duration(value).total_seconds() if isinstance(value, str) else value


ConnectTimeout = Annotated[
    float, BeforeValidator(_seconds), Field(gt=0, description="seconds, or a duration")
]
"""A spec's `connect_timeout`: seconds (5.0 by default in the specs), or a duration (`3s`)."""


class ProbeSpec(BaseModel):
    """Base of every kind's `Spec`: strict and frozen, so a YAML typo is an error with its line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def secrets(self, environ: Mapping[str, str]) -> set[str]:
        """Values a run may show that must be masked: by default those of the fields named as
        secrets at any depth (the variables `*_env` fields name, secret-named keys, URL
        passwords). A kind with other secret fields adds them."""
        return credentials(self.model_dump(), environ)


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
    """What a probe may use besides its spec: the clock, its deadline and shared clients.

    The runner makes one as the run starts, with the run's hard `timeout`; the probe's own
    deadline is BUDGET_SHARE of it from then, so it can report what it measured in time."""

    timeout: float
    clock: Clock = field(default_factory=SystemClock)
    resources: Resources = field(default_factory=Resources)
    budget: float = field(init=False)
    """Seconds the probe may spend, from its start to its deadline."""
    deadline: float = field(init=False)
    """The clock's monotonic time at which the probe gives up."""

    def __post_init__(self) -> None:
        self.budget = BUDGET_SHARE * self.timeout
        self.deadline = self.clock.monotonic() + self.budget

    def remaining(self) -> float:
        """Seconds left until the deadline; MIN_WAIT once it has passed."""
        return max(self.deadline - self.clock.monotonic(), MIN_WAIT)


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


def os_error_text(exc: OSError) -> str:
    """The errno's text ("Connection refused"), not asyncio's "Connect call failed (addr)"."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


def socket_failure(
    exc: BaseException, target: str, facts: Facts | None = None
) -> ProbeFailure | None:
    """The failure named by the socket's own error, which client libraries wrap a few levels
    down: resolving (dns), the TLS handshake (tls), connecting (connect); None if there is none."""
    causes = list(exception_chain(exc))
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return ProbeFailure(Reason.DNS, f"{target}: cannot resolve: {cause.strerror}", facts)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ProbeFailure(Reason.TLS, f"{target}: certificate: {cause.verify_message}", facts)
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            reason = getattr(cause, "reason", None) or cause
            return ProbeFailure(Reason.TLS, f"{target}: TLS handshake failed: {reason}", facts)
    errors = [os_error_text(c) for c in causes if isinstance(c, OSError) and c.errno]
    return ProbeFailure(Reason.CONNECT, f"{target}: {errors[0]}", facts) if errors else None


def classify(exc: BaseException) -> Reason:
    """The reason for an exception that escaped a probe: a timeout, else what the socket's own
    error names (socket_failure, the one map), else `error`."""
    if isinstance(exc, TimeoutError):
        return Reason.TIMEOUT
    found = socket_failure(exc, "")
    return found.reason if found is not None else Reason.ERROR
