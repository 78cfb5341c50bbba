"""The audit tables both stores share: attestations, history records and waivers as rows, the
SQL that reads and writes them (written with `?` and `{table}` names; each store spells them in
its dialect), and every audit write as the steps both stores run in one transaction."""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from exporter.history import (
    ATTESTED,
    WAIVER_APPROVED,
    WAIVER_REQUESTED,
    WAIVER_REVOKED,
    Change,
    seal,
)
from exporter.results import Attestation, ItemKey, Waiver
from exporter.state import Conflict
from exporter.state.cache import attestation_row

T = TypeVar("T")

ATTESTATIONS = (
    "SELECT id, checklist, item, by_name, note, at, fingerprint, token FROM {attestation}"
    " WHERE (CAST(? AS TEXT) IS NULL OR checklist = ?) AND (CAST(? AS TEXT) IS NULL"
    " OR item = ?) ORDER BY id DESC LIMIT ?"
)
LATEST_ATTESTATIONS = (
    "SELECT id, checklist, item, by_name, note, at, fingerprint, token FROM {attestation}"
    " WHERE id IN (SELECT max(id) FROM {attestation} GROUP BY checklist, item)"
)
INSERT_ATTESTATION = (
    "INSERT INTO {attestation} (checklist, item, by_name, note, at, fingerprint, token)"
    " VALUES (?,?,?,?,?,?,?)"
)
REVISION = "SELECT n FROM {revision}"
BUMP_REVISION = "UPDATE {revision} SET n = n + 1 RETURNING n"
LAST_STATE = (
    "SELECT state, reason FROM {history} WHERE checklist = ? AND item = ? AND state"
    " IN ('passing', 'failing', 'lapsed', 'waived', 'blocked', 'unconfigured') ORDER"
    " BY id DESC LIMIT 1"
)
LAST_DEFINITION = (
    "SELECT state, reason FROM {history} WHERE checklist = ? AND item = ?"
    " AND state = 'defined' ORDER BY id DESC LIMIT 1"
)


def last_of_kind(change: Change) -> str:
    """The query for the item's last record of `change`'s kind (see Change.repeats_drop)."""
    return LAST_STATE if change.is_state else LAST_DEFINITION


INSERT_CHANGE = (
    "INSERT INTO {history} (id, checklist, item, at, state, reason, detail,"
    " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)"
)
# Filters are written `(? IS NULL OR ...)`, one statement for every combination; the casts
# tell PostgreSQL the type of a parameter it sees only compared with NULL.
HISTORY = (
    "SELECT * FROM (SELECT id, checklist, item, at, state, reason, detail, prev_hash, hash FROM"
    " {history} WHERE (CAST(? AS TEXT) IS NULL OR checklist = ?) AND (CAST(? AS TEXT)"
    " IS NULL OR item = ?) AND (CAST(? AS DOUBLE PRECISION) IS NULL OR at >= ?) AND"
    " (CAST(? AS DOUBLE PRECISION) IS NULL OR at < ?) ORDER BY id DESC LIMIT ?) AS newest"
    " ORDER BY id"
)
"""The newest `limit` records that match, in chain order."""
PRIOR = (
    "SELECT id, checklist, item, at, state, reason, detail, prev_hash, hash FROM"
    " {history} WHERE id IN (SELECT max(id) FROM {history} WHERE at < ? AND state IN"
    " ('passing', 'failing', 'lapsed', 'waived', 'blocked', 'unconfigured') AND"
    " (CAST(? AS TEXT) IS NULL OR checklist = ?) AND (CAST(? AS TEXT) IS NULL OR item"
    " = ?) GROUP BY checklist, item)"
)
"""Each item's last state before a period: the state it entered the period in."""
OPEN_WAIVERS = (
    "SELECT id, checklist, item, reason, by_name, token, requested_at, expires,"
    " fingerprint, approved_by, approved_at, revoked_by, revoked_at FROM {waiver}"
    " WHERE revoked_at IS NULL ORDER BY id"
)
WAIVERS = (
    "SELECT id, checklist, item, reason, by_name, token, requested_at, expires,"
    " fingerprint, approved_by, approved_at, revoked_by, revoked_at FROM {waiver}"
    " WHERE (CAST(? AS TEXT) IS NULL OR checklist = ?) AND (CAST(? AS TEXT) IS NULL"
    " OR item = ?) AND (CAST(? AS BIGINT) IS NULL OR id = ?) ORDER BY id DESC LIMIT ?"
)
WAIVER_BY_ID = (
    "SELECT id, checklist, item, reason, by_name, token, requested_at, expires,"
    " fingerprint, approved_by, approved_at, revoked_by, revoked_at FROM {waiver}"
    " WHERE id = ?"
)
INSERT_WAIVER = (
    "INSERT INTO {waiver} (checklist, item, reason, by_name, token, requested_at,"
    " expires, fingerprint, approved_by, approved_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
# Approval and revocation fill a column once (guarded here), never overwrite one.
APPROVE_WAIVER = (
    "UPDATE {waiver} SET approved_by = ?, approved_at = ?"
    " WHERE id = ? AND approved_at IS NULL AND revoked_at IS NULL"
)
REVOKE_WAIVER = (
    "UPDATE {waiver} SET revoked_by = ?, revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
)


HEAD = "SELECT last_id, last_hash FROM {history}_head"
MOVE_HEAD = "UPDATE {history}_head SET last_id = ?, last_hash = ?"
# Retention keeps the record the head names, even when older than the cut: it anchors the
# chain's end, so a history deleted whole is not taken for one retention emptied.
PRUNE = "DELETE FROM {history} WHERE at < ? AND id < (SELECT last_id FROM {history}_head)"


def dollar(query: str) -> str:
    """`?` placeholders numbered `$1, $2, ...` for asyncpg; a repeated filter value is passed
    twice, so each `?` has its own number."""
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(count)}", query)


def filters(
    checklist: str | None, item: str | None, since: float | None, until: float | None
) -> tuple[Any, ...]:
    return (checklist, checklist, item, item, since, since, until, until)


def change_of(row: Iterable[Any]) -> Change:
    id_, checklist, item, at, state, reason, detail, prev_hash, hash_ = tuple(row)
    return Change(checklist, item, at, state, reason, detail, int(id_), prev_hash, hash_)


def change_row(c: Change) -> tuple[Any, ...]:
    return (c.id, c.checklist, c.item, c.at, c.state, c.reason, c.detail, c.prev_hash, c.hash)


def waiver_of(row: Iterable[Any]) -> Waiver:
    (id_, checklist, item, reason, by, token, requested_at, expires, fingerprint) = tuple(row)[:9]
    approved_by, approved_at, revoked_by, revoked_at = tuple(row)[9:]
    return Waiver(
        checklist=checklist,
        item=item,
        reason=reason,
        by=by,
        requested_at=requested_at,
        expires=expires,
        fingerprint=fingerprint,
        token=token,
        approved_by=approved_by,
        approved_at=approved_at,
        revoked_by=revoked_by,
        revoked_at=revoked_at,
        id=int(id_),
    )


def waiver_row(w: Waiver) -> tuple[Any, ...]:
    return (
        w.checklist,
        w.item,
        w.reason,
        w.by,
        w.token,
        w.requested_at,
        w.expires,
        w.fingerprint,
        w.approved_by,
        w.approved_at,
    )


def by_item(waivers: Iterable[Waiver]) -> dict[ItemKey, tuple[Waiver, ...]]:
    grouped: dict[ItemKey, list[Waiver]] = {}
    for waiver in waivers:
        grouped.setdefault(ItemKey(waiver.checklist, waiver.item), []).append(waiver)
    return {key: tuple(ws) for key, ws in grouped.items()}


def _detail(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"))


def attested(a: Attestation) -> Change:
    detail = {
        "id": a.id,
        "by": a.by,
        "note": a.note,
        "token": a.token,
        "fingerprint": a.fingerprint,
    }
    return Change(a.checklist, a.item, a.at, ATTESTED, "", _detail(detail))


def waiver_event(w: Waiver, kind: str, at: float) -> Change:
    """The history record of a waiver being asked for, approved or revoked."""
    detail: dict[str, Any] = {"waiver": w.id}
    if kind == WAIVER_REQUESTED:
        detail |= {
            "reason": w.reason,
            "by": w.by,
            "token": w.token,
            "expires": w.expires,
            "fingerprint": w.fingerprint,
        }
    if kind == WAIVER_APPROVED or (kind == WAIVER_REQUESTED and w.approved_at is not None):
        detail["approved_by"] = w.approved_by
    if kind == WAIVER_REVOKED:
        detail["revoked_by"] = w.revoked_by
    return Change(w.checklist, w.item, at, kind, "", _detail(detail))


def conflict(waiver: Waiver) -> str:
    """Why a waiver cannot be approved or revoked (again)."""
    if waiver.revoked_at is not None:
        return f"waiver {waiver.id} was revoked by {waiver.revoked_by}"
    return f"waiver {waiver.id} was already approved by {waiver.approved_by}"


# --- the audit writes, as steps ----------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One statement of an audit write; the store runs it in its dialect and sends back the
    answer: the row read (`row`, None when there is none), the id of the row inserted (`id`),
    or the number of rows changed (`count`)."""

    query: str
    args: tuple[Any, ...] = ()
    answer: Literal["row", "id", "count"] = "count"


Steps = Generator[Step, Any, T]
"""An audit write: the steps of one transaction, then what the write returns. Written once
here; SQLite runs them on its worker thread, PostgreSQL on a pooled connection."""


def run(steps: Steps[T], answer: Any = None) -> tuple[Step | None, Any]:
    """Sends `answer` to the write and returns its next step, or (None, what it returns)."""
    try:
        return steps.send(answer), None
    except StopIteration as done:
        return None, done.value


def transaction(steps: Steps[T], durable: bool) -> Steps[tuple[T, int | None]]:
    """`steps`, and with `durable` the revision counter moved first (other processes reload;
    in PostgreSQL its row lock orders the writers, so ids are in commit order): with it."""
    revision = (yield Step(BUMP_REVISION, answer="row"))[0] if durable else None
    out = yield from steps
    return out, None if revision is None else int(revision)


def chain(changes: Iterable[Change]) -> Steps[list[Change]]:
    """Seals and inserts `changes` after the chain's head (whose row lock orders the writers of
    every replica); a state record equal to the item's last of its kind is left out."""
    head = yield Step(HEAD + "{lock}", answer="row")
    last_id, last_hash = int(head[0]), str(head[1])
    recorded = []
    for change in changes:
        if change.repeats_drop:
            last = yield Step(last_of_kind(change), (change.checklist, change.item), "row")
            if tuple(last or ()) == (change.state, change.reason):
                continue
        last_id += 1
        sealed = seal(change, last_id, last_hash)
        yield Step(INSERT_CHANGE, change_row(sealed))
        last_hash = sealed.hash
        recorded.append(sealed)
    if recorded:
        yield Step(MOVE_HEAD, (last_id, last_hash))
    return recorded


def attest(attestation: Attestation) -> Steps[Attestation]:
    id_ = yield Step(INSERT_ATTESTATION, attestation_row(attestation), "id")
    recorded = replace(attestation, id=int(id_))
    yield from chain([attested(recorded)])
    return recorded


def prune(before: float) -> Steps[int]:
    deleted = yield Step(PRUNE, (before,))
    return int(deleted)


def request_waiver(waiver: Waiver) -> Steps[Waiver]:
    id_ = yield Step(INSERT_WAIVER, waiver_row(waiver), "id")
    recorded = replace(waiver, id=int(id_))
    yield from chain([waiver_event(recorded, WAIVER_REQUESTED, recorded.requested_at)])
    return recorded


def decide_waiver(
    id_: int, decision: Literal["approve", "revoke"], by: str, at: float
) -> Steps[Waiver]:
    """Approves or revokes a waiver, once: KeyError when there is none, Conflict when it is
    already decided that way (or revoked)."""
    row = yield Step(WAIVER_BY_ID, (id_,), "row")
    if row is None:
        raise KeyError(id_)
    update = APPROVE_WAIVER if decision == "approve" else REVOKE_WAIVER
    if (yield Step(update, (by, at, id_))) == 0:
        raise Conflict(conflict(waiver_of(row)))
    decided = waiver_of((yield Step(WAIVER_BY_ID, (id_,), "row")))
    event = WAIVER_APPROVED if decision == "approve" else WAIVER_REVOKED
    yield from chain([waiver_event(decided, event, at)])
    return decided
