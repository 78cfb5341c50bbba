"""The evidence report of a period, for an auditor: per checklist and item, the share of time
passing, every regression after go-live, the attestations, the waivers and the definition
changes, read from the hash-chained history; `--verify` checks the chain and that every
attestation and waiver row matches the history record made with it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.config import Checklist, Config
from exporter.evaluate import checklist_go_live
from exporter.history import (
    ATTESTED,
    DEFINED,
    WAIVER_APPROVED,
    WAIVER_REQUESTED,
    WAIVER_REVOKED,
    Change,
    broken_links,
    lost_tail,
    passing_share,
    regressions,
)
from exporter.redact import Redactor
from exporter.results import Attestation, ItemKey, ItemState, Waiver
from exporter.times import iso

ALL = 10_000_000
"""Rows read at most per query: a period's records of a large install fit many times over."""


@dataclass(frozen=True)
class Period:
    since: float
    until: float
    generated: float


@dataclass(frozen=True)
class Records:
    """What the store holds for the report: the period's history (each item's state before it
    first), every waiver, and the item states (for go-live)."""

    history: Sequence[Change]
    waivers: Sequence[Waiver]
    states: Mapping[ItemKey, ItemState]


def build(
    config: Config,
    records: Records,
    period: Period,
    names: Iterable[str] | None,
    redactor: Redactor,
) -> dict[str, Any]:
    """The report as data (the JSON format; Markdown and HTML are renderings of it), with the
    SHA-256 of its content."""
    wanted = set(names) if names else None
    by_item: dict[ItemKey, list[Change]] = {}
    for change in sorted(records.history, key=lambda c: (c.at, c.id or 0)):
        by_item.setdefault(ItemKey(change.checklist, change.item), []).append(change)
    content = {
        "period": {"since": iso(period.since), "until": iso(period.until)},
        "checklists": [
            _checklist(c, by_item, records, period, redactor)
            for c in config.checklists
            if wanted is None or c.name in wanted
        ],
    }
    digest = hashlib.sha256(_canonical(content).encode()).hexdigest()
    return {"generated_at": iso(period.generated), "sha256": digest, **content}


def _canonical(content: Mapping[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _checklist(
    checklist: Checklist,
    by_item: Mapping[ItemKey, list[Change]],
    records: Records,
    period: Period,
    redactor: Redactor,
) -> dict[str, Any]:
    go_live = checklist_go_live(checklist, records.states)
    # A period reaching past now is judged up to now: the future is not known to pass.
    end = min(period.until, period.generated)
    items = []
    for section in checklist.sections:
        for item in section.items:
            key = ItemKey(checklist.name, item.id)
            changes = by_item.get(key, [])
            in_period = [c for c in changes if period.since <= c.at < period.until]
            share = passing_share(changes, period.since, end)
            items.append(
                {
                    "section": section.name,
                    "item": item.id,
                    "title": item.title,
                    "severity": item.severity.value,
                    "passing_share": None if share is None else round(share, 6),
                    "regressions": [
                        {
                            "start": iso(r.start),
                            "end": iso(r.end),
                            "state": r.state,
                            "reason": r.reason,
                        }
                        for r in regressions(changes, go_live, period.since, end)
                    ],
                    "attestations": [
                        {"at": iso(c.at), **_pick(c, redactor, "by", "note", "token")}
                        for c in in_period
                        if c.state == ATTESTED
                    ],
                    "waivers": [
                        _waiver(w, redactor)
                        for w in records.waivers
                        if (w.checklist, w.item) == key and _overlaps(w, period)
                    ],
                    "definition_changes": [
                        {"at": iso(c.at), "fingerprint": c.reason, **json.loads(c.detail or "{}")}
                        for c in in_period
                        if c.state == DEFINED
                    ],
                }
            )
    return {
        "name": checklist.name,
        "title": checklist.display_title,
        "go_live": iso(go_live),
        "items": items,
    }


def _pick(change: Change, redactor: Redactor, *fields: str) -> dict[str, Any]:
    detail = json.loads(change.detail or "{}")
    return {f: redactor.optional(detail.get(f)) for f in fields}


def _overlaps(waiver: Waiver, period: Period) -> bool:
    ends = min(waiver.expires, waiver.revoked_at or waiver.expires)
    return waiver.requested_at < period.until and ends > period.since


def _waiver(waiver: Waiver, redactor: Redactor) -> dict[str, Any]:
    return {
        "id": waiver.id,
        "reason": redactor.text(waiver.reason),
        "requested_by": redactor.text(waiver.by),
        "requested_at": iso(waiver.requested_at),
        "approved_by": redactor.optional(waiver.approved_by),
        "approved_at": iso(waiver.approved_at),
        "expires": iso(waiver.expires),
        "revoked_by": redactor.optional(waiver.revoked_by),
        "revoked_at": iso(waiver.revoked_at),
    }


WAIVER_EVENTS = (WAIVER_REQUESTED, WAIVER_APPROVED, WAIVER_REVOKED)


def _row(
    name: str,
    id_: int | None,
    at: float,
    stored: dict[str, Any],
    event: Change | None,
    oldest: float | None,
) -> list[str]:
    """An attestation or waiver row against the history record written with it: `stored`, its
    fields as the record's detail names them (`at`: the record's own time)."""
    if event is None:
        if oldest is not None and at >= oldest:
            return [f"{name} {id_}: no history record of it"]
        return []
    recorded = {**json.loads(event.detail), "at": event.at}
    if any(value != recorded[field] for field, value in stored.items()):
        return [f"{name} {id_}: differs from history record {event.id}"]
    return []


def verify(
    history: Sequence[Change],
    attestations: Sequence[Attestation],
    waivers: Sequence[Waiver],
    head: tuple[int, str],
) -> list[str]:
    """Every problem with the audit records, each naming the row: a broken chain, its newest
    records gone (against the store's `head`, read before `history`), or an attestation or
    waiver row that no longer matches the history record written with it."""
    problems = broken_links(history) + lost_tail(history, head)
    events: dict[tuple[str, int], Change] = {}
    for change in history:
        detail = json.loads(change.detail or "{}")
        if change.state == ATTESTED and "id" in detail:
            events[(ATTESTED, int(detail["id"]))] = change
        elif change.state in WAIVER_EVENTS and "waiver" in detail:
            events[(change.state, int(detail["waiver"]))] = change
    oldest = min((c.at for c in history), default=None)
    for a in attestations:
        event = events.get((ATTESTED, a.id or 0))
        stored: dict[str, Any] = {"by": a.by, "note": a.note, "at": a.at}
        stored["fingerprint"] = a.fingerprint
        problems += _row("attestation", a.id, a.at, stored, event, oldest)
    for w in waivers:
        event = events.get((WAIVER_REQUESTED, w.id or 0))
        stored = {"reason": w.reason, "by": w.by, "expires": w.expires}
        stored["fingerprint"] = w.fingerprint
        problems += _row("waiver", w.id, w.requested_at, stored, event, oldest)
        if event is not None:
            problems += _decisions(w, event, events)
    rows = {("attestation", a.id) for a in attestations} | {("waiver", w.id) for w in waivers}
    for (kind, id_), event in sorted(events.items(), key=lambda e: e[1].id or 0):
        name = "attestation" if kind == ATTESTED else "waiver"
        if kind in (ATTESTED, WAIVER_REQUESTED) and (name, id_) not in rows:
            problems.append(f"{name} {id_}: its row is gone (history record {event.id} has it)")
    return problems


def _decisions(
    waiver: Waiver, requested: Change, events: Mapping[tuple[str, int], Change]
) -> list[str]:
    """A waiver row's approval and revocation against the history records of them (who
    approved a waiver, and when, matters as much as what it waives)."""
    id_ = waiver.id or 0
    problems = []
    approved = events.get((WAIVER_APPROVED, id_))
    approval: tuple[object, object] = (None, None)
    if approved is not None:
        approval = (json.loads(approved.detail).get("approved_by"), approved.at)
    elif json.loads(requested.detail).get("approved_by") is not None:
        # Approval turned off: approved at once, as it was asked for.
        approval = (json.loads(requested.detail)["approved_by"], requested.at)
    if (waiver.approved_by, waiver.approved_at) != approval:
        record = (approved or requested).id
        problems.append(f"waiver {id_}: its approval differs from history record {record}")
    revoked = events.get((WAIVER_REVOKED, id_))
    revocation: tuple[object, object] = (None, None)
    if revoked is not None:
        revocation = (json.loads(revoked.detail).get("revoked_by"), revoked.at)
    if (waiver.revoked_by, waiver.revoked_at) != revocation:
        record = (revoked or requested).id
        problems.append(f"waiver {id_}: its revocation differs from history record {record}")
    return problems


def markdown(report: Mapping[str, Any], chain: str, redactor: Redactor) -> str:
    """The report for people; `chain` says whether and how the chain was verified."""
    period = report["period"]
    out = [
        "# Readiness evidence",
        "",
        f"- Period: {period['since']} to {period['until']}",
        f"- Generated: {report['generated_at']}",
        f"- Content SHA-256: `{report['sha256']}`",
        f"- Audit chain: {chain}",
        "",
    ]
    for checklist in report["checklists"]:
        out += [f"## {checklist['title']} (`{checklist['name']}`)", ""]
        out += [f"Go-live: {checklist['go_live'] or 'not yet'}", ""]
        for item in checklist["items"]:
            share = item["passing_share"]
            passing = "no data" if share is None else f"{share:.2%} of the time passing"
            out += [f"### {item['item']}: {item['title']}", "", f"- {passing}"]
            for r in item["regressions"]:
                out.append(
                    f"- Regression: {r['state']} ({r['reason']}) from {r['start']}"
                    f" to {r['end'] or 'the end of the period'}"
                )
            for a in item["attestations"]:
                note = f": {a['note']}" if a["note"] else ""
                out.append(f"- Attested by {a['by']} at {a['at']}{note}")
            for w in item["waivers"]:
                approved = (
                    f"approved by {w['approved_by']} at {w['approved_at']}"
                    if w["approved_by"]
                    else "not approved"
                )
                revoked = (
                    f", revoked by {w['revoked_by']} at {w['revoked_at']}"
                    if w["revoked_by"]
                    else ""
                )
                out.append(
                    f"- Waiver {w['id']}: {w['reason']} (asked by {w['requested_by']} at"
                    f" {w['requested_at']}, {approved}, until {w['expires']}{revoked})"
                )
            for d in item["definition_changes"]:
                out.append(
                    f"- Definition at {d['at']}: `{d['fingerprint'][:12]}` ({d.get('kind')})"
                )
            out.append("")
    return redactor.text("\n".join(out).rstrip() + "\n")


def html(report: Mapping[str, Any], chain: str, redactor: Redactor) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).render(markdown(report, chain, redactor))
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>Readiness evidence</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto}</style>"
        f"</head><body>\n{body}</body></html>\n"
    )


def chain_text(verified: bool, problems: Sequence[str], records: int) -> str:
    if not verified:
        return "not verified (run with --verify)"
    if problems:
        return f"BROKEN ({len(problems)} problems: " + "; ".join(problems) + ")"
    return f"verified, {records} records intact"
