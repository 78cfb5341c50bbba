"""Text renderings of a checklist's state for the CLI: table, JSON, Markdown and JUnit XML."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from exporter.evaluate import ChecklistView, ItemView, SectionView, blocks_ready
from exporter.importing.mdchecklist import SEPARATOR
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.results import MANUAL
from exporter.times import when
from exporter.web.status import describe_waiver, status_document

UNSET_OPTIONAL = "n/a?: optional (if applicable) and not set up; waive it if it does not apply"


def why(view: ItemView) -> list[str]:
    """Why an item is not passing: its reason, the probe's message (what went wrong, when it
    could not measure), then the conditions that failed on what it did measure."""
    result = view.state.result
    parts = [view.reason.value]
    if view.reason is Reason.UNCONFIGURED:
        return [*parts, unconfigured_hint(view)]
    if view.blocked:
        parts.append(blocked_text(view))
    if view.message:
        parts.append(view.message)
    return parts + (list(result.failed) if result is not None else [])


def blocked_text(view: ItemView) -> str:
    """`blocked by db/postgres-up`: the dependencies not passing, in the item's own words (the
    checklist is left out for its own items)."""
    names = (str(k) if k.checklist != view.checklist.name else k.item for k in view.blocked_by)
    return f"blocked by {', '.join(names)}"


def unconfigured_hint(view: ItemView) -> str:
    """What to do about an unconfigured item: the variables to set."""
    names = view.item.unconfigured
    return f"set {', '.join(names)} (environment, or import --set), or edit the item's target"


def detail(view: ItemView, redactor: Redactor) -> str:
    """Why an item is not passing, in one line: the failing conditions or the probe's message;
    for a waived item, the waiver."""
    if view.waiver is not None:
        return describe_waiver(view.waiver, redactor)
    if view.unset_optional:
        return UNSET_OPTIONAL
    if view.passing:
        return "lapsed" if view.lapsed else ""
    parts = why(view)
    if view.lapsed:
        parts.append("lapsed")
    return redactor.text(
        ": ".join([parts[0], "; ".join(parts[1:])]) if len(parts) > 1 else parts[0]
    )


def verdict(view: ChecklistView, fail_under: float | None = None) -> bool:
    """What `check` prints and exits by: ready by the one rule (`ChecklistView.ready`), and
    with `--fail-under RATIO` a score of at least RATIO as well."""
    return view.ready and (fail_under is None or view.score >= fail_under)


def verdict_text(view: ChecklistView, fail_under: float | None = None) -> str:
    if verdict(view, fail_under):
        return "READY"
    if view.ready and fail_under is not None:
        return f"NOT READY (score under --fail-under {fail_under:g})"
    return "NOT READY"


TABLE_WIDTH = 100
"""`check`'s table fits a terminal this wide: long names and details are cut with `…` (the
other formats carry the full text)."""


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def failing(view: ItemView) -> bool:
    """What `--only-failing` keeps: an item not passing, or lapsed."""
    return not view.passing or view.lapsed


def table(
    views: list[ChecklistView],
    fail_under: float | None = None,
    only_failing: bool = False,
    width: int = TABLE_WIDTH,
    *,
    redactor: Redactor,
) -> str:
    """A block per checklist (its name, then a row per item: the id is what `explain` takes
    after `CHECKLIST/`), each row cut to `width`; then one verdict line per checklist."""
    head = ("STATUS", "SEVERITY", "KIND", "TIME", "ITEM", "DETAIL")
    blocks: list[tuple[str, list[tuple[str, ...]]]] = []
    for checklist in views:
        rows: list[tuple[str, ...]] = []
        for v in checklist.items:
            if only_failing and not failing(v):
                continue
            result = v.state.result
            took = f"{result.duration * 1000:.0f}ms" if result and v.item.kind != MANUAL else "-"
            status = (
                "N/A"
                if v.waiver
                else "N/A?"
                if v.unset_optional
                else "PASS"
                if v.passing
                else "FAIL"
            )
            # A manual item's own words say more than `not_attested` in the room there is.
            text = (
                redactor.text(v.message)
                if v.reason is Reason.NOT_ATTESTED and v.message and not v.not_applicable
                else detail(v, redactor)
            )
            rows.append((status, v.item.severity.value, v.item.kind, took, v.item.id, text))
        blocks.append((checklist.checklist.name, rows))
    every = [r for _, rows in blocks for r in rows]
    widths = [max([len(head[i])] + [len(r[i]) for r in every]) for i in range(5)]
    widths[4] = min(widths[4], 32)  # a long id is cut; the detail gets the rest of the line
    detail_width = max(width - sum(widths) - 2 * 5, 10)
    lines = [_row(head, widths, detail_width)]
    for name, rows in blocks:
        lines.append(shorten(f"{name}:", width))
        lines += [_row(r, widths, detail_width) for r in rows]
        if only_failing and not rows:
            lines.append("  every item passes")
    lines.append("")
    lines += [checklist_summary(c, fail_under) for c in views]
    return redactor.known("\n".join(line.rstrip() for line in lines) + "\n")


def _row(cells: tuple[str, ...], widths: list[int], detail_width: int) -> str:
    fixed = (shorten(c, w).ljust(w) for c, w in zip(cells[:5], widths, strict=True))
    return "  ".join([*fixed, shorten(cells[5], detail_width)])


def checklist_summary(checklist: ChecklistView, fail_under: float | None = None) -> str:
    """One line per checklist: what `check` ends with, and all it prints beside `-o FILE`."""
    counted = [v for v in checklist.items if not v.not_applicable]
    passing = sum(v.passing for v in counted)
    left_out = len(checklist.items) - len(counted)
    return (
        f"{checklist.checklist.name}: {passing}/{len(counted)} passing"
        + (f", {left_out} n/a" if left_out else "")
        + f" (score {checklist.score:.2f}), {verdict_text(checklist, fail_under)}"
        + (", live" if checklist.live else "")
    )


def as_json(
    views: list[ChecklistView],
    now: float,
    fail_under: float | None = None,
    only_failing: bool = False,
    *,
    redactor: Redactor,
) -> str:
    """The /status document, with `ready` as `check` judges it (the floor of `--fail-under`
    included when given) per checklist and for the run as a whole."""
    doc = status_document(views, now, redactor)
    for checklist, view in zip(doc["checklists"], views, strict=True):
        checklist["ready"] = verdict(view, fail_under)
        if fail_under is not None:
            checklist["fail_under"] = fail_under
        if only_failing:
            for section in checklist["sections"]:
                section["items"] = [
                    i for i in section["items"] if not i["passing"] or i.get("lapsed")
                ]
    doc["ready"] = all(c["ready"] for c in doc["checklists"])
    return redactor.known(json.dumps(doc, indent=2, default=str) + "\n")


REASON_HELP = {
    Reason.OK: "every condition holds",
    Reason.CONDITION: "the probe ran; a condition does not hold",
    Reason.TIMEOUT: "the probe ran out of time",
    Reason.CONNECT: "cannot connect: refused, unreachable or reset",
    Reason.DNS: "the name does not resolve",
    Reason.TLS: "TLS handshake or certificate verification failed",
    Reason.AUTH: "credentials rejected",
    Reason.ERROR: "the probe itself failed",
    Reason.NOT_ATTESTED: "waiting for a person to attest it",
    Reason.NOT_RUN: "defined, not run yet",
    Reason.UNCONFIGURED: "its target is a placeholder not set yet: it does not run",
}
"""Each reason explained in a few words (the /status page); where a line has room for one word,
the reason's own name is shown, read as words (`not_attested` as `not attested`)."""


def headings(title: str) -> list[str]:
    """The nested headings an imported title was joined from (one for any other title)."""
    return [part for part in title.split(SEPARATOR) if part] or [title]


def outline(checklist: ChecklistView) -> list[tuple[SectionView, list[tuple[int, str]]]]:
    """Each section with the headings to show before it, as (depth, text): the parts of its
    joined title that differ from the section before, so shared parents appear once."""
    out = []
    above: list[str] = []
    for section in checklist.sections:
        path = headings(section.section.display_title)
        shared = next(
            (i for i, (a, b) in enumerate(zip(above, path, strict=False)) if a != b),
            min(len(above), len(path)),
        )
        if shared == len(path):
            shared -= 1  # the same headings again: a second run of items under them
        out.append((section, [(depth, path[depth]) for depth in range(shared, len(path))]))
        above = path
    return out


def nested(section: SectionView) -> list[tuple[ItemView, int]]:
    """The section's items in order, each with its depth below its `parent:` items."""
    depth: dict[str, int] = {}
    out = []
    for view in section.items:
        parent = view.item.parent
        depth[view.item.id] = depth.get(parent, -1) + 1 if parent else 0
        out.append((view, depth[view.item.id]))
    return out


def summary(checklist: ChecklistView, fail_under: float | None = None) -> str:
    items = checklist.items
    parts = [
        f"{sum(v.passing for v in items)} of {len(items)} items passing",
        verdict_text(checklist, fail_under).lower(),
    ]
    if lapsed := sum(v.lapsed for v in items):
        parts.append(f"{lapsed} lapsed")
    if checklist.live:
        parts.append("live")
    return f"Score {checklist.score:.0%}: " + ", ".join(parts)


def why_not(view: ItemView, redactor: Redactor) -> list[str]:
    """Why the item is not passing, and whether it lapsed; or the waiver it is under."""
    if view.waiver is not None:
        return [describe_waiver(view.waiver, redactor)]
    if view.unset_optional:
        return [UNSET_OPTIONAL]
    out = []
    if not view.passing:
        reason, *explained = why(view)
        text = reason.replace("_", " ")
        out.append(redactor.text(f"{text}: {'; '.join(explained)}" if explained else text))
    if view.lapsed:
        out.append("**lapsed**")
    return out


def notes(view: ItemView, redactor: Redactor) -> list[str]:
    """What a reader needs beside the tick: why not, lapsed, last success, when due."""
    out = why_not(view, redactor)
    attestation = view.state.attestation
    if view.item.kind == MANUAL and attestation is not None:
        out.append(f"attested by {attestation.by} {when(attestation.at)}")
    elif view.state.last_success:
        out.append(f"last success {when(view.state.last_success)}")
    if view.due is not None and not view.lapsed:
        out.append(f"due {when(view.due)}")
    return out


def markdown(
    views: list[ChecklistView],
    now: float | None = None,
    fail_under: float | None = None,
    only_failing: bool = False,
    *,
    redactor: Redactor,
) -> str:
    """The live checklist in the shape of the document it was imported from: its headings
    (those with no items too), nested items indented, `[x]` where the item passes."""
    out: list[str] = []
    for checklist in views:
        title = headings(checklist.checklist.display_title)
        out += [f"{'#' if i == 0 else '##'} {part}\n" for i, part in enumerate(title)]
        generated = f" (as of {when(now)})" if now is not None else ""
        out.append(f"{summary(checklist, fail_under)}{generated}.\n")
        for section, new_headings in outline(checklist):
            out += [f"{'#' * (depth + 2)} {text}\n" for depth, text in new_headings]
            for v, depth in nested(section):
                if only_failing and not failing(v):
                    continue
                shown = notes(v, redactor)
                suffix = f" — {'; '.join(shown)}" if shown else ""
                tick = "x" if v.passing else " "
                out.append(f"{'  ' * depth}- [{tick}] {v.item.title}{suffix}")
            if section.items:  # a heading with no items (an "Overview") is followed by the next
                out.append("")
    return redactor.text("\n".join(out).rstrip() + "\n")


def junit(
    views: list[ChecklistView],
    fail_under: float | None = None,
    only_failing: bool = False,
    *,
    redactor: Redactor,
) -> str:
    """One suite per checklist: a case per item, then a `ready` case carrying the verdict, so
    a score floor fails the suite too. An item fails when it keeps the checklist from being
    ready; a failing `info` item is advisory (skipped), so a ready checklist has no failures."""
    suites = ET.Element("testsuites", name="readiness")
    for checklist in views:
        items = checklist.items
        ready = verdict(checklist, fail_under)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=checklist.checklist.name,
            tests=str(sum(not only_failing or failing(v) for v in items) + 1),
            failures=str(sum(blocks_ready(v) for v in items) + (not ready)),
            errors="0",
        )
        for section in checklist.sections:
            for v in section.items:
                if only_failing and not failing(v):
                    continue
                result = v.state.result
                case = ET.SubElement(
                    suite,
                    "testcase",
                    name=f"{v.item.id}: {v.item.title}",
                    classname=f"{checklist.checklist.name}.{section.section.name}",
                    time=f"{result.duration:.3f}" if result else "0",
                )
                if blocks_ready(v):
                    why = detail(v, redactor)
                    failure = ET.SubElement(case, "failure", message=why, type=v.reason.value)
                    failure.text = why
                elif not v.passing:
                    ET.SubElement(case, "skipped", message=f"advisory: {detail(v, redactor)}")
        case = ET.SubElement(
            suite, "testcase", name="ready", classname=checklist.checklist.name, time="0"
        )
        if not ready:
            text = verdict_text(checklist, fail_under)
            ET.SubElement(case, "failure", message=text, type="not_ready").text = text
    ET.indent(suites)
    return redactor.known(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
