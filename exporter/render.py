"""Text renderings of a checklist's state for the CLI: table, JSON, Markdown and JUnit XML."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from exporter.evaluate import ChecklistView, ItemView
from exporter.redact import REDACTOR
from exporter.status import iso, status_document


def detail(view: ItemView) -> str:
    """Why an item is not passing, in one line: the failing conditions or the probe's message."""
    if view.passing:
        return "lapsed" if view.lapsed else ""
    result = view.state.result
    parts = [view.reason.value]
    if result is not None:
        parts += list(result.failed) or ([result.message] if result.message else [])
    if view.lapsed:
        parts.append("lapsed")
    return REDACTOR.text(
        ": ".join([parts[0], "; ".join(parts[1:])]) if len(parts) > 1 else parts[0]
    )


def table(views: list[ChecklistView]) -> str:
    rows = [("STATUS", "ITEM", "KIND", "SEVERITY", "TIME", "DETAIL")]
    for checklist in views:
        for section in checklist.sections:
            for v in section.items:
                result = v.state.result
                took = (
                    f"{result.duration * 1000:.0f}ms" if result and v.item.kind != "manual" else "-"
                )
                rows.append(
                    (
                        "PASS" if v.passing else "FAIL",
                        f"{checklist.checklist.name}/{section.section.name}/{v.item.id}",
                        v.item.kind,
                        v.item.severity.value,
                        took,
                        detail(v),
                    )
                )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ]
    for checklist in views:
        passing = sum(v.passing for v in checklist.items)
        lines.append(
            f"\n{checklist.checklist.name}: {passing}/{len(checklist.items)} passing "
            f"(score {checklist.score:.2f}), {'READY' if checklist.ready else 'NOT READY'}"
            + (", live" if checklist.live else "")
        )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def as_json(views: list[ChecklistView], now: float) -> str:
    return json.dumps(status_document(views, now), indent=2, default=str) + "\n"


def markdown(views: list[ChecklistView]) -> str:
    out: list[str] = []
    for checklist in views:
        out.append(f"# {checklist.checklist.display_title}\n")
        state = "ready" if checklist.ready else "not ready"
        out.append(f"Score {checklist.score:.0%}, {state}.\n")
        for section in checklist.sections:
            out.append(f"## {section.section.display_title}\n")
            for v in section.items:
                notes = []
                if v.state.last_success:
                    notes.append(f"last success {iso(v.state.last_success)}")
                if v.due is not None:
                    notes.append(f"due {iso(v.due)}")
                if not v.passing:
                    notes.append(detail(v))
                suffix = f" — {', '.join(notes)}" if notes else ""
                out.append(f"- [{'x' if v.passing else ' '}] {v.item.title}{suffix}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def junit(views: list[ChecklistView]) -> str:
    suites = ET.Element("testsuites", name="readiness")
    for checklist in views:
        items = checklist.items
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=checklist.checklist.name,
            tests=str(len(items)),
            failures=str(sum(not v.passing for v in items)),
            errors="0",
        )
        for section in checklist.sections:
            for v in section.items:
                result = v.state.result
                case = ET.SubElement(
                    suite,
                    "testcase",
                    name=f"{v.item.id}: {v.item.title}",
                    classname=f"{checklist.checklist.name}.{section.section.name}",
                    time=f"{result.duration:.3f}" if result else "0",
                )
                if not v.passing:
                    failure = ET.SubElement(case, "failure", message=detail(v), type=v.reason.value)
                    failure.text = detail(v)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
