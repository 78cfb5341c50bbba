"""The one clock of the daemon, injectable so tests can move time without sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

SETTLE_YIELDS = 8
"""Turns of the event loop FixedClock.run_for gives after each timer: enough for the tasks a
timer started (or a test released) to run up to their next wait on something outside the
loop, and for their done-callbacks to run."""


async def _settle() -> None:
    for _ in range(SETTLE_YIELDS):
        await asyncio.sleep(0)


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time as Unix seconds (what timestamps, lapses and schedules use)."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading for measuring durations."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Calls `callback` on the running event loop once `now()` has reached `when`."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        # The loop's timers are monotonic: a wall-clock step while waiting moves the call by
        # as much, which is why the scheduler never waits longer than its MAX_SLEEP.
        return asyncio.get_running_loop().call_later(max(when - time.time(), 0.0), callback)


class _FixedTimer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FixedClock:
    """A clock that only moves when told to: for tests of lapses, due times and schedules."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self._timers: list[tuple[float, int, _FixedTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _FixedTimer(callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Moves time forward, calling the timers due on the way at their times, in order."""
        until = self._now + seconds
        while (due := self._pop_due(until)) is not None:
            self._move_to(due[0])
            due[1].callback()
        self._move_to(until)

    async def run_for(self, seconds: float) -> None:
        """Like `advance`, but lets the event loop run what each timer started before the next
        one fires, as it would in real time."""
        until = self._now + seconds
        while (due := self._pop_due(until)) is not None:
            self._move_to(due[0])
            due[1].callback()
            await _settle()
        self._move_to(until)
        await _settle()

    def stall(self, seconds: float) -> None:
        """Moves time forward without calling the timers due meanwhile, as when the event loop
        is blocked or the process suspended: they fire late, at the next advance."""
        self._move_to(self._now + seconds)

    def _pop_due(self, until: float) -> tuple[float, _FixedTimer] | None:
        """The earliest timer not cancelled that is due by `until`, and its time."""
        while self._timers and self._timers[0][0] <= until:
            when, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                return when, timer
        return None

    def _move_to(self, when: float) -> None:
        # A timer planned in the past fires at once, without turning the clock back.
        if when > self._now:
            self._mono += when - self._now
            self._now = when
