"""The /status document: every item's state and evidence as JSON-ready data, secrets masked."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from exporter.evaluate import ChecklistView, ItemView
from exporter.history import LAST_CHANGES, Change, passing_share
from exporter.redact import Redactor
from exporter.results import MANUAL, ItemKey, Waiver
from exporter.times import iso, when

DAY = 86400.0


def describe_waiver(waiver: Waiver, redactor: Redactor) -> str:
    """How a waived item reads in /status, `check` and `report`."""
    return (
        f"n/a: {redactor.text(waiver.reason)} ({redactor.text(waiver.by)}, approved by"
        f" {redactor.optional(waiver.approved_by)},"
        f" until {when(waiver.expires)})"
    )


def change_document(change: Change, redactor: Redactor) -> dict[str, Any]:
    """A history record as the API and /status show it (a note's secrets masked)."""
    return {
        "id": change.id,
        "checklist": change.checklist,
        "item": change.item,
        "at": iso(change.at),
        "state": change.state,
        "reason": change.reason,
        "detail": _detail(change.detail, redactor),
        "prev_hash": change.prev_hash,
        "hash": change.hash,
    }


def _detail(text: str, redactor: Redactor) -> dict[str, Any]:
    """An audit event's detail with its free text masked. Its `token` is the name of the API
    token that made the change, shown as GET /api/v1/attestations shows it (the redactor
    would mask it whole for its key's name), so an auditor sees which token acted."""
    detail: dict[str, Any] = json.loads(text) if text else {}
    token = detail.pop("token", None)
    masked: dict[str, Any] = redactor.value(detail)
    if token is not None:
        masked["token"] = redactor.text(token) if isinstance(token, str) else token
    return masked


def history_summaries(
    changes: Sequence[Change], now: float, redactor: Redactor
) -> dict[ItemKey, dict[str, Any]]:
    """Per item: its last state changes and its share of time passing over 7 and 30 days,
    from the records of the last 30 days (with each item's state when they began)."""
    by_item: dict[ItemKey, list[Change]] = {}
    # State changes only: the audit events (attested, waivers, definitions) are in the API.
    for change in sorted((c for c in changes if c.is_state), key=lambda c: (c.at, c.id or 0)):
        by_item.setdefault(ItemKey(change.checklist, change.item), []).append(change)
    return {
        key: {
            "changes": [change_document(c, redactor) for c in reversed(found[-LAST_CHANGES:])],
            "passing_7d": _ratio(passing_share(found, now - 7 * DAY, now)),
            "passing_30d": _ratio(passing_share(found, now - 30 * DAY, now)),
        }
        for key, found in by_item.items()
    }


def _ratio(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def item_status(
    view: ItemView, redactor: Redactor, history: Mapping[ItemKey, dict[str, Any]] | None = None
) -> dict[str, Any]:
    result = view.state.result
    item = view.item
    doc: dict[str, Any] = {
        "id": item.id,
        "title": item.title,
        "kind": item.kind,
        "severity": item.severity.value,
        "passing": view.passing,
        "reason": view.reason.value,
        "expect": [c.text for c in item.conditions],
        "last_run": iso(result.started_at) if result and item.kind != MANUAL else None,
        "last_success": iso(view.state.last_success),
        "duration_seconds": round(result.duration, 6) if result else None,
        "failed": list(result.failed) if result else [],
        "message": view.message,
        "facts": result.facts if result else {},
    }
    if item.depends_on:
        doc["depends_on"] = list(item.depends_on)
        doc["blocked"] = view.blocked
        doc["blocked_by"] = [str(k) for k in view.blocked_by]
    if item.unconfigured:
        doc["unconfigured"] = list(item.unconfigured)
        doc["message"] = f"unconfigured: set {', '.join(item.unconfigured)}"
        # A run from before it became unconfigured says nothing now.
        doc["failed"], doc["facts"], doc["last_run"] = [], {}, None
    if view.state.attestation is not None and item.kind == MANUAL:
        attestation = view.state.attestation
        doc["attestation"] = {
            "by": attestation.by,
            "at": iso(attestation.at),
            "note": attestation.note,
            "current": item.attestation_matches(attestation.fingerprint),
        }
    if view.item.optional:
        doc["optional"] = True
        if view.unset_optional:
            doc["not_applicable"] = "n/a?"
    if view.waiver is not None:
        waiver = view.waiver
        doc["waived"] = describe_waiver(waiver, redactor)
        doc["waiver"] = {
            "id": waiver.id,
            "reason": waiver.reason,
            "by": waiver.by,
            "approved_by": waiver.approved_by,
            "expires": iso(waiver.expires),
        }
    if history is not None:
        doc["history"] = history.get(
            view.key, {"changes": [], "passing_7d": None, "passing_30d": None}
        )
    if item.every is not None:
        doc["every"] = item.every.total_seconds()
        doc["due"] = iso(view.due)
        doc["lapsed"] = view.lapsed
    return redactor.value(doc)  # type: ignore[no-any-return]


def status_document(
    views: list[ChecklistView],
    now: float,
    redactor: Redactor,
    running: Mapping[ItemKey, float] | None = None,
    history: Mapping[ItemKey, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every item's state; `running`: ping items whose job started and has not reported yet,
    with when it started (the daemon's, shown as `running_since`); `history`: each item's
    last changes and passing shares."""
    doc: dict[str, Any] = {
        "generated_at": iso(now),
        "checklists": [
            {
                "name": v.checklist.name,
                "title": redactor.text(v.checklist.display_title),
                "go_live": iso(v.go_live),
                "live": v.live,
                "ready": v.ready,
                "score": round(v.score, 4),
                "sections": [
                    {
                        "name": s.section.name,
                        "title": redactor.text(s.section.display_title),
                        "score": round(s.score, 4),
                        "items": [item_status(i, redactor, history) for i in s.items],
                    }
                    for s in v.sections
                ],
            }
            for v in views
        ],
    }
    if running:
        for checklist in doc["checklists"]:
            for section in checklist["sections"]:
                for item in section["items"]:
                    started = running.get(ItemKey(checklist["name"], item["id"]))
                    if started is not None:
                        item["running_since"] = iso(started)
    return doc
