"""The maths of recurring items and go-live: small pure functions with the clock passed in."""

from __future__ import annotations

from datetime import datetime, timedelta


def due_at(every: timedelta, last_success: float | None, first_seen: float) -> float:
    """When a recurring item is next due: `every` after its last success, or after it was
    first seen when it has never succeeded (a new daily item is not overdue on day one)."""
    base = last_success if last_success is not None else first_seen
    return base + every.total_seconds()


def is_lapsed(now: float, due: float, grace: timedelta) -> bool:
    """A recurring item lapses when it is past due by more than its grace."""
    return now > due + grace.total_seconds()


def is_live(now: float, go_live: float | None) -> bool:
    return go_live is not None and now >= go_live


def go_live_at(planned: datetime | None, declared: float | None) -> float | None:
    """When a checklist went (or goes) live: its `go_live:` or the time go-live was attested at
    runtime, whichever comes first."""
    times = [t for t in (planned.timestamp() if planned else None, declared) if t is not None]
    return min(times) if times else None


def attestation_holds(now: float, due: float | None, fingerprint_matches: bool) -> bool:
    """A recurring attestation holds until it is due; one without `every` until the item's
    definition changes."""
    return now < due if due is not None else fingerprint_matches


def score(passing: int, total: int) -> float:
    """Passing items over items; an empty checklist or section counts as fully ready."""
    return passing / total if total else 1.0
