"""What both stores share about faults: the deadline on every database call, the fault that
turns /health/ready to 503 and the tally of writes the store could not take."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import structlog

T = TypeVar("T")

DEADLINE = 5.0
"""Seconds any one database call may take before it counts as failed: a database that accepts
connections and never answers must not hold a probe, a scrape or shutdown."""
PING_DEADLINE = 2.0
"""/health/ready answers within this, so an orchestrator sees 503 within seconds."""

log = structlog.get_logger("exporter.state")


async def bounded(call: Awaitable[T], deadline: float) -> T:
    """`call`, or TimeoutError once `deadline` seconds have passed. Unlike asyncio.wait_for,
    it does not wait for the cancelled call to unwind: a driver's cleanup on a server that does
    not answer (asyncpg's cancel request and reset) has its own, later bound."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=deadline)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_consume)
        raise TimeoutError
    return task.result()


def _consume(task: asyncio.Future[Any]) -> None:
    """Reads a timed-out call's outcome, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


class StoreHealth:
    """The store's fault (None while healthy) and its failed-write tally. While a fault stands,
    probe results are kept in memory and not written (counted as failed writes) until a ping
    finds the database answering again: the next result written then carries the current
    state, so nothing is retried and no probe waits on a database known to be down."""

    store_name = "store"

    def __init__(self) -> None:
        self.fault: str | None = None
        self.write_errors = 0

    def failed(self, fault: str) -> None:
        """Marks the store faulty; the first report of each fault is logged as an error."""
        if fault != self.fault:
            log.error("state_fault", store=self.store_name, error=fault)
        self.fault = fault

    def recovered(self) -> None:
        if self.fault is not None:
            log.info("state_recovered", store=self.store_name, was=self.fault)
        self.fault = None

    def write_failed(self, fault: str, count: int = 1, **context: str) -> None:
        """`count` writes (probe results of one batch) were not taken."""
        self.write_errors += count
        log.warning("state_write_failed", store=self.store_name, error=fault, **context)
