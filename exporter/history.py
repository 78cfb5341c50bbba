"""Item history: every state change of an item and every audit event (attested, waiver asked,
approved, revoked) as an append-only record sealed into one hash chain, and the pure maths over
it: the state an item is in, its share of time passing, its regressions, the chain's check."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from exporter.reasons import Reason

if TYPE_CHECKING:
    from exporter.evaluate import ItemView

PASSING = "passing"
FAILING = "failing"
LAPSED = "lapsed"
WAIVED = "waived"
BLOCKED = "blocked"
UNCONFIGURED = "unconfigured"
STATES = (PASSING, FAILING, LAPSED, WAIVED, BLOCKED, UNCONFIGURED)
"""Records that say which state an item is in from their time on (the rest are events)."""
DEFINED = "defined"
"""The item's definition as the daemon loaded it (`reason`: its fingerprint): a new one is a
definition change."""
ATTESTED = "attested"
WAIVER_REQUESTED = "waiver_requested"
WAIVER_APPROVED = "waiver_approved"
WAIVER_REVOKED = "waiver_revoked"
EVENTS = (DEFINED, ATTESTED, WAIVER_REQUESTED, WAIVER_APPROVED, WAIVER_REVOKED)
NOT_PASSING = (FAILING, LAPSED, BLOCKED)
"""States that count as a regression after go-live (waived and unconfigured do not)."""
DEFAULT_RETENTION_DAYS = 400
LAST_CHANGES = 5
"""State changes of an item that /status and `explain` show (the API has them all)."""


@dataclass(frozen=True)
class Change:
    """One history record: an item's new state (with the reason when not passing), or an audit
    event with its `detail` (JSON text: who, note, waiver id). `id`, `prev_hash` and `hash` are
    given when the store appends it to the chain."""

    checklist: str
    item: str
    at: float
    """Unix seconds when the change happened (a run's start, or when the clock made it)."""
    state: str
    reason: str = ""
    detail: str = ""
    id: int | None = None
    prev_hash: str = ""
    hash: str = ""

    @property
    def is_state(self) -> bool:
        return self.state in STATES

    @property
    def repeats_drop(self) -> bool:
        """A record equal to the item's last one of its kind is not written again: a state,
        or a definition (replicas and restarts see the same ones)."""
        return self.state in STATES or self.state == DEFINED


def digest(change: Change, id_: int, prev_hash: str) -> str:
    """SHA-256 over the record's content, its id and the previous record's hash: editing,
    inserting or deleting any record breaks the chain from there on."""
    c = change
    payload = [id_, prev_hash, c.checklist, c.item, repr(float(c.at)), c.state, c.reason, c.detail]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def seal(change: Change, id_: int, prev_hash: str) -> Change:
    return replace(change, id=id_, prev_hash=prev_hash, hash=digest(change, id_, prev_hash))


def broken_links(records: Iterable[Change]) -> list[str]:
    """Every place the chain does not hold, naming the record: its hash does not match its
    content, or it does not carry the previous record's hash (one removed or changed). The
    oldest record left after retention pruning starts the chain."""
    problems = []
    previous: Change | None = None
    for record in sorted(records, key=lambda r: r.id or 0):
        id_ = record.id or 0
        if record.hash != digest(record, id_, record.prev_hash):
            problems.append(f"history record {id_}: its hash does not match its content")
        if previous is not None and record.prev_hash != previous.hash:
            problems.append(
                f"history record {id_}: does not follow record {previous.id}"
                " (a record between them was removed or altered)"
            )
        previous = record
    return problems


def lost_tail(records: Iterable[Change], head: tuple[int, str]) -> list[str]:
    """What is missing at the chain's end, which no link between records shows: the store's
    head (the newest record's id and hash, kept apart from the records) names a record that
    is gone, or one whose hash is not the head's. Read the head before the records: those
    appended in between are newer, not missing."""
    last_id, last_hash = head
    if last_id == 0:
        return []
    ids = {record.id or 0: record for record in records}
    if last_id in ids:
        if ids[last_id].hash != last_hash:
            return [f"history record {last_id}: its hash is not the one the chain's head holds"]
        return []
    older = [id_ for id_ in ids if id_ < last_id]
    if not older:
        return [
            f"history records up to {last_id} are gone: the chain's head names {last_id} as"
            " the newest and none is left"
        ]
    left = max(older)
    if left + 1 == last_id:
        gone = f"record {last_id} is gone: the chain's head names it"
    else:
        gone = f"records {left + 1}..{last_id} are gone: the chain's head names {last_id}"
    return [f"history {gone} as the newest (the newest left is {left})"]


def state_of(view: ItemView) -> tuple[str, str] | None:
    """The history state of an evaluated item and its reason; None before it has any (never
    run). The order is the precedence a reader expects: a waiver covers everything; lapsed
    before failing; `unconfigured` is the reason of an item waiting for its variables."""
    if view.waiver is not None:
        return WAIVED, ""
    if view.lapsed:
        return LAPSED, view.reason.value
    if view.reason is Reason.NOT_RUN:
        return None
    if view.reason.value == UNCONFIGURED:
        return UNCONFIGURED, ""
    if view.passing:
        return PASSING, ""
    if view.blocked:
        return BLOCKED, view.reason.value
    return FAILING, view.reason.value


@dataclass(frozen=True)
class Span:
    """A stretch of one state: from `start` until `end` (None: still so at the period's end)."""

    state: str
    reason: str
    start: float
    end: float | None


def spans(changes: Sequence[Change], start: float, end: float) -> list[Span]:
    """The item's states over [start, end) from its state changes (in time order, including
    the last one before `start`); time before its first change is unknown and left out."""
    states = [c for c in changes if c.is_state]
    out = []
    for i, change in enumerate(states):
        following = states[i + 1].at if i + 1 < len(states) else None
        begin = max(change.at, start)
        stop = min(following, end) if following is not None else end
        if stop > begin:
            out.append(
                Span(change.state, change.reason, begin, None if following is None else stop)
            )
    return out


def passing_share(changes: Sequence[Change], start: float, end: float) -> float | None:
    """The share of known, unwaived time in [start, end) the item passed; None when nothing of
    it is known (a new item) or all of it was waived."""
    known = passing = 0.0
    for span in spans(changes, start, end):
        if span.state == WAIVED:
            continue
        length = (span.end if span.end is not None else end) - span.start
        known += length
        if span.state == PASSING:
            passing += length
    return passing / known if known > 0 else None


def regressions(
    changes: Sequence[Change], go_live: float | None, start: float, end: float
) -> list[Span]:
    """Every stretch after go-live in [start, end) the item was not passing (failing, lapsed,
    blocked), merged while it stays so, with the reason it started with."""
    if go_live is None:
        return []
    out: list[Span] = []
    for span in spans(changes, max(start, go_live), end):
        if span.state not in NOT_PASSING:
            continue
        if out and out[-1].end == span.start:
            out[-1] = replace(out[-1], end=span.end)
        else:
            out.append(span)
    return out
