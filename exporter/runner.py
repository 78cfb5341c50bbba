"""The boundary around every probe call: concurrency bound, timeout, clock, reasons, counters."""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog

from exporter.clock import Clock
from exporter.conditions import failing
from exporter.config import Item
from exporter.probes import PROBES
from exporter.probes.base import Facts, ProbeContext, ProbeFailure, Resources, classify
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.results import Result

log = structlog.get_logger("exporter.runner")


def run_result(reason: Reason) -> str:
    """The `result` label of readiness_probe_runs_total for a run's reason."""
    if reason is Reason.OK:
        return "success"
    if reason in (Reason.TIMEOUT, Reason.ERROR):
        return reason.value
    return "failure"


class Runner:
    """Runs items' probes; at most `max_concurrency` at once, each within its timeout."""

    def __init__(
        self,
        max_concurrency: int,
        clock: Clock,
        resources: Resources | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.clock = clock
        self.resources = resources or Resources()
        self.redactor = redactor or Redactor()
        """The config's secrets, masked in every result before anything stores or shows it."""
        self.runs: Counter[tuple[str, str]] = Counter()
        """(kind, result) -> count, for readiness_probe_runs_total."""
        self._slots = asyncio.Semaphore(max_concurrency)

    def resize(self, max_concurrency: int) -> None:
        """A new bound for runs that start from now on (a reload changed max_concurrency)."""
        self._slots = asyncio.Semaphore(max_concurrency)

    async def run(self, item: Item, timeout: float) -> Result:
        """Runs one item's probe and judges its facts. Never raises but for cancellation."""
        async with self._slots:
            started_at = self.clock.now()
            start = self.clock.monotonic()
            ctx = ProbeContext(timeout=timeout, clock=self.clock, resources=self.resources)
            facts: Facts = {}
            failure: tuple[Reason, str] | None = None
            try:
                facts = await asyncio.wait_for(PROBES[item.kind].probe(item.spec, ctx), timeout)
            except ProbeFailure as exc:
                facts, failure = exc.facts, (exc.reason, exc.message)
            except TimeoutError:
                failure = (Reason.TIMEOUT, f"no answer within {timeout:g}s")
            except Exception as exc:
                failure = (classify(exc), f"{type(exc).__name__}: {exc}")
            duration = self.clock.monotonic() - start
        result = masked(judge(item, facts, failure, started_at, duration), self.redactor)
        self.runs[(item.kind, run_result(result.reason))] += 1
        return result


def judge(
    item: Item,
    facts: Facts,
    failure: tuple[Reason, str] | None,
    started_at: float,
    duration: float,
) -> Result:
    """Conditions decide. A probe that failed but still measured facts (a refused port that
    must stay closed) passes when every condition holds on those facts."""
    facts.setdefault("duration", round(duration, 6))
    failed = tuple(failing(item.conditions, facts))
    if failure is not None and (failed or len(facts) <= 1):
        reason, message = failure
        # Conditions on facts the failed probe never measured say nothing the reason does not.
        measured = tuple(failing([c for c in item.conditions if c.fact in facts], facts))
        return Result(False, reason, started_at, duration, facts, measured, message)
    if failed:
        return Result(False, Reason.CONDITION, started_at, duration, facts, failed)
    return Result(True, Reason.OK, started_at, duration, facts)


def masked(result: Result, redactor: Redactor) -> Result:
    """The result as it may be stored and shown: the one point every run passes after its
    conditions were judged on the real facts, so no store, page or log sees a secret."""
    # Built field by field: dataclasses.replace introspects the class at every call, half
    # of this function's time once per run.
    return Result(
        passing=result.passing,
        reason=result.reason,
        started_at=result.started_at,
        duration=result.duration,
        facts=redactor.value(result.facts),
        failed=tuple(map(redactor.text, result.failed)),
        message=redactor.text(result.message) if result.message else "",
    )
