"""The audit tables both stores share: history records and waivers as rows, the SQL that reads
them (written with `?`; PostgreSQL's `$n` is made from it), and the event a write appends."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from exporter.history import (
    ATTESTED,
    WAIVER_APPROVED,
    WAIVER_REQUESTED,
    WAIVER_REVOKED,
    Change,
)
from exporter.results import Attestation, ItemKey, Waiver

HISTORY_COLUMNS = "id, checklist, item, at, state, reason, detail, prev_hash, hash"
WAIVER_COLUMNS = (
    "id, checklist, item, reason, by_name, token, requested_at, expires, fingerprint,"
    " approved_by, approved_at, revoked_by, revoked_at"
)
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
