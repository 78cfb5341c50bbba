"""Plain data every layer shares: what one run of an item produced, and what the store keeps
about an item between runs. Imports nothing of the project but the reasons, so judging, storing
and rendering never load a probe."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from exporter.reasons import Reason

FactValue = bool | int | float | str | list[str] | None
Facts = dict[str, FactValue]
"""What a probe measured, by fact name: the only thing a probe returns."""

RUN_RESULTS = ("success", "failure", "error", "timeout")
"""The `result` label values of `readiness_probe_runs_total`."""

MANUAL = "manual"
"""The kind of an item a person attests: never probed or scheduled, judged by attestations."""
PING = "ping"
"""The kind of an item a job reports to (POST /api/v1/pings): never probed or scheduled."""
PASSIVE_KINDS = frozenset({MANUAL, PING})
"""Kinds nothing probes: a person attests (`manual`) or a job reports in (`ping`)."""

GO_LIVE_ITEM = "go-live"
"""Reserved item id: attesting it declares the checklist live at runtime."""


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


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
class Attestation:
    """A person's word that a manual item is done (or, for the item `go-live`, that a checklist
    went live): who, when, why, and the item's definition it was given for."""

    checklist: str
    item: str
    by: str
    at: float
    """Unix seconds when it was recorded."""
    fingerprint: str
    """The item's definition fingerprint then: an item without `every` holds while it matches."""
    note: str = ""
    token: str | None = None
    """The API token's name; None when written on the host with `readiness-exporter attest`."""
    id: int | None = None
    """The store's sequence number, assigned when recorded."""


@dataclass(frozen=True)
class Waiver:
    """An item declared not applicable (or its risk accepted) until `expires`: asked for by one
    person, in effect once approved by another (or at once when approval is off), for the
    item's definition it was asked for. Kept while the item keeps running."""

    checklist: str
    item: str
    reason: str
    by: str
    requested_at: float
    expires: float
    fingerprint: str
    token: str | None = None
    """The requesting API token's name (self-approval is refused by it)."""
    approved_by: str | None = None
    approved_at: float | None = None
    revoked_by: str | None = None
    revoked_at: float | None = None
    id: int | None = None

    def holds(self, now: float, fingerprint: str) -> bool:
        """In effect: approved, not revoked, not expired, and the item still as defined then."""
        return (
            self.approved_at is not None
            and self.revoked_at is None
            and now < self.expires
            and fingerprint == self.fingerprint
        )


@dataclass(frozen=True)
class ItemState:
    """The store's view of one item: the latest result and the lifecycle timestamps."""

    result: Result | None = None
    last_success: float | None = None
    first_seen: float | None = None
    attestation: Attestation | None = None
    """The latest attestation (manual items and `go-live`)."""
    waivers: tuple[Waiver, ...] = ()
    """The item's waivers not revoked (requested, approved or expired), oldest first."""
