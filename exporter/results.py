"""What one run of an item produced, and what the store keeps about an item between runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from exporter.probes.base import Facts
from exporter.reasons import Reason


class ItemKey(NamedTuple):
    """A tuple, so hashing and comparing it are C-speed: /metrics looks up 10,000 per scrape."""

    checklist: str
    item: str

    def __str__(self) -> str:
        return f"{self.checklist}/{self.item}"


@dataclass(frozen=True)
class Result:
    passing: bool
    reason: Reason
    started_at: float
    """Unix seconds when the probe started."""
    duration: float
    """Seconds the probe took (the timeout when it timed out)."""
    facts: Facts = field(default_factory=dict)
    failed: tuple[str, ...] = ()
    """Each condition that did not hold, explained with the measured value."""
    message: str = ""
    """What went wrong when the probe could not measure (reason other than ok/condition)."""


@dataclass(frozen=True)
class ItemState:
    """The store's view of one item: the latest result and the lifecycle timestamps."""

    result: Result | None = None
    last_success: float | None = None
    first_seen: float | None = None
