"""The /status document: every item's state and evidence as JSON-ready data, secrets masked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.evaluate import ChecklistView, ItemView
from exporter.redact import Redactor
from exporter.results import MANUAL, ItemKey
from exporter.times import iso


def item_status(view: ItemView, redactor: Redactor) -> dict[str, Any]:
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
) -> dict[str, Any]:
    """Every item's state; `running`: ping items whose job started and has not reported yet,
    with when it started (the daemon's, shown as `running_since`)."""
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
                        "items": [item_status(i, redactor) for i in s.items],
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
