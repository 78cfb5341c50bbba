"""Group commit of probe results: one transaction per batch instead of one per result.

A result waits at most FLUSH_EVERY seconds (or until BATCH_MOST are waiting) and shows in the
in-memory view, so in /metrics and /status, only once its batch is committed: a crash loses at
most the batch in flight, never a result (nor the last success it carries) already served."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from exporter.results import ItemKey, Result

FLUSH_EVERY = 0.1
"""Seconds the first result of a batch waits for others (the contract says at most 0.2)."""
BATCH_MOST = 2000
"""A batch this large is written at once, whatever the clock."""

Unwritten = tuple[Result, float | None, float]
"""A result with the last success and first seen it gives its item."""
Batch = dict[ItemKey, Unwritten]

log = structlog.get_logger("exporter.state")


class GroupCommit:
    """Collects results into batches and hands each batch to `write` (which commits it in one
    transaction and then shows it); `record` returns once its result's batch is written."""

    def __init__(
        self,
        write: Callable[[Batch], Awaitable[None]],
        every: float = FLUSH_EVERY,
        most: int = BATCH_MOST,
    ) -> None:
        self._write = write
        self._every = every
        self._most = most
        self.pending: Batch = {}
        self._written: asyncio.Future[None] | None = None
        """Resolved when the pending batch is written; created with its first result."""
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def record(self, key: ItemKey, unwritten: Unwritten) -> None:
        if (earlier := self.pending.get(key)) is not None:
            # A run cancelled while waiting, then a new one: the later success is kept.
            result, last_success, first_seen = unwritten
            successes = [s for s in (last_success, earlier[1]) if s is not None]
            unwritten = (result, max(successes, default=None), min(first_seen, earlier[2]))
        self.pending[key] = unwritten
        if self._written is None:
            loop = asyncio.get_running_loop()
            self._written = loop.create_future()
            self._timer = loop.call_later(self._every, self._flush)
        written = self._written
        if len(self.pending) >= self._most:
            self._flush()
        # A run cancelled while it waits (shutdown) leaves its result in the batch.
        await asyncio.shield(written)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, written = self.pending, self._written
        self.pending, self._written = {}, None
        if written is None:
            return
        task = asyncio.get_running_loop().create_task(self._commit(batch, written))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _commit(self, batch: Batch, written: asyncio.Future[None]) -> None:
        try:
            await self._write(batch)
        except Exception as exc:  # the stores count their own faults; this is a bug's trace
            error = f"{type(exc).__name__}: {exc}"
            log.error("state_batch_failed", error=error, results=len(batch))
            written.set_exception(exc)
            written.add_done_callback(_retrieved)
        else:
            written.set_result(None)

    async def flush(self) -> None:
        """Writes what is waiting now and waits for every batch in flight (at shutdown)."""
        self._flush()
        while self._flushes:
            await asyncio.wait(set(self._flushes))


def _retrieved(future: asyncio.Future[None]) -> None:
    future.exception()
