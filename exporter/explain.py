"""`explain CHECKLIST/ITEM`: one item in words, from the config and the stored state: what it
checks, what it saw last, why it fails, who attested it, when it is due and its last state
changes."""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING

from exporter.render import REASON_HELP
from exporter.results import ItemKey
from exporter.times import ago, exact

if TYPE_CHECKING:
    from collections.abc import Sequence

    from exporter.config import Config
    from exporter.evaluate import ItemView
    from exporter.history import Change
    from exporter.results import Attestation


class Unknown(ValueError):
    """The CHECKLIST/ITEM names nothing in the config."""


def find(config: Config, target: str) -> ItemKey:
    """`CHECKLIST/ITEM` (or `CHECKLIST/SECTION/ITEM`, as `check` once printed it) to a key. An
    id cut short with `…` by `check`'s table, or any unique beginning of one, is enough."""
    name, sep, rest = target.partition("/")
    if not sep or not rest:
        raise Unknown(f"{target!r}: write CHECKLIST/ITEM, e.g. stock-collector/health-endpoint")
    checklist = next((c for c in config.checklists if c.name == name), None)
    if checklist is None:
        names = ", ".join(c.name for c in config.checklists)
        raise Unknown(f"no checklist named {name!r} (have: {names})")
    wanted = rest.rsplit("/", 1)[-1].rstrip("…").strip()
    ids = [i.id for s in checklist.sections for i in s.items]
    if wanted in ids:
        return ItemKey(name, wanted)
    starting = [i for i in ids if wanted and i.startswith(wanted)]
    if len(starting) == 1:
        return ItemKey(name, starting[0])
    if starting:
        raise Unknown(f"{target!r} could be any of {', '.join(starting[:5])}: give more of the id")
    close = difflib.get_close_matches(wanted, ids, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise Unknown(f"checklist {name!r} has no item {wanted!r}{hint}")


def explain(
    view: ItemView,
    config: Config,
    now: float,
    history: Sequence[Attestation] = (),
    changes: Sequence[Change] = (),
) -> str:
    """The item in words; `history`: its latest attestations, `changes`: its latest state
    changes, both newest first."""
    item = view.item
    result = view.state.result
    rows: list[tuple[str, str]] = [
        ("section", f"{view.section.name} ({view.section.display_title})"),
        ("severity", item.severity.value),
        ("probe", _probe(view)),
        ("runs", _runs(view, config)),
    ]
    state = "PASSING" if view.passing else "FAILING"
    rows.append(("state", f"{state}: {view.reason.value} ({REASON_HELP[view.reason]})"))
    if view.message:
        rows.append(("message", view.message))
    lines = [f"{view.checklist.name}/{item.id}: {item.title}"]
    lines += [f"  {label:<13} {text}" for label, text in rows]
    if item.kind != "manual":
        lines.append("  conditions")
        for condition in item.conditions:
            if result is None or not result.facts:
                lines.append(f"    ? {condition.text} (not measured)")
            else:
                mark = "✓" if condition.holds(result.facts) else "✗"
                lines.append(f"    {mark} {condition.explain(result.facts)}")
        lines.append(f"  {'last run':<13} {_last_run(view, now)}")
        success = view.state.last_success
        lines.append(f"  {'last success':<13} {_at(success, now) if success else 'never'}")
    attestation = view.state.attestation
    if item.kind == "manual":
        if attestation is None:
            lines.append(f"  {'attestation':<13} none yet")
        else:
            current = item.attestation_matches(attestation.fingerprint)
            text = f"by {attestation.by} at {_at(attestation.at, now)}"
            text += f", note: {attestation.note}" if attestation.note else ""
            if not current and item.every is None:
                text += "; definition changed since the attestation: attest again"
            lines.append(f"  {'attestation':<13} {text}")
        if len(history) > 1:
            lines.append("  attested before")
            lines += [f"    by {a.by} at {_at(a.at, now)}" for a in history[1:]]
    if view.due is not None:
        grace = item.grace.total_seconds()
        if view.lapsed:
            lines.append(f"  {'lapsed':<13} at {_at(view.due + grace, now)}")
        else:
            lines.append(f"  {'due':<13} {_at(view.due, now)}; lapses {_span(grace)} later")
    if changes:
        lines.append(f"  {'changes':<13} newest first")
        lines += [
            f"    {c.state}{f' ({c.reason})' if c.reason else ''} at {_at(c.at, now)}"
            for c in changes
        ]
    else:
        lines.append(f"  {'changes':<13} none recorded yet (serve records them)")
    if item.runbook_url:
        lines.append(f"  {'runbook':<13} {item.runbook_url}")
    if item.description:
        lines.append(f"  {'description':<13} {item.description}")
    return "\n".join(lines) + "\n"


def _probe(view: ItemView) -> str:
    item = view.item
    if item.kind == "manual":
        return "manual: attested by a person (readiness-exporter attest, or the API)"
    spec = item.spec.model_dump(mode="json", exclude_defaults=True)
    settings = ", ".join(f"{k}={json.dumps(v)}" for k, v in spec.items())
    return f"{item.kind}: {settings}" if settings else item.kind


def _runs(view: ItemView, config: Config) -> str:
    item = view.item
    every = f"; must succeed every {_span(item.every.total_seconds())}" if item.every else ""
    if item.kind == "manual":
        return ("once, until its definition changes" if not item.every else "recurring") + every
    if item.schedule:
        return f"on the cron schedule {item.schedule!r} (UTC){every}"
    interval = item.interval or config.exporter.default_interval
    timeout = item.timeout or config.exporter.default_timeout
    return (
        f"every {_span(interval.total_seconds())}, timeout {_span(timeout.total_seconds())}{every}"
    )


def _last_run(view: ItemView, now: float) -> str:
    result = view.state.result
    if result is None:
        return "not run yet"
    return f"{_at(result.started_at, now)}, took {result.duration * 1000:.0f} ms"


def _at(ts: float, now: float) -> str:
    span = ago(now - ts)
    return f"{exact(ts)} ({span} ago)" if ts <= now else f"{exact(ts)} (in {span})"


def _span(seconds: float) -> str:
    return ago(seconds).replace(" ", "")
