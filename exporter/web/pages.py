"""The /status page for people and `report --format html`: server-rendered HTML, one file.

No framework and nothing fetched from elsewhere: CSS (light and dark, phone first) and, on the
live page, a few lines of script that post attestations with the viewer's token. The live page
loads both from the package's static/ files, as its Content-Security-Policy allows no inline
code; the report, a file to keep, carries its CSS inline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from importlib.resources import files
from typing import Any

from markdown_it import MarkdownIt

from exporter.evaluate import ChecklistView, ItemView, SectionView, not_runnable
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.render import REASON_HELP, headings, nested, outline, summary, why_not
from exporter.results import MANUAL, ItemKey
from exporter.times import ago, when
from exporter.web.status import item_status

# Titles are Markdown (`**Name**: text`, `code`); raw HTML in them is shown, never run.
_INLINE = MarkdownIt("commonmark", {"html": False})
History = Mapping[ItemKey, dict[str, Any]] | None


@dataclass(frozen=True)
class _Render:
    """What every part of one page is rendered with."""

    now: float
    live: bool
    """The live page (sections with problems open, forms), not a report."""
    attest: bool
    redactor: Redactor
    history: History = None


"""Each item's last changes and passing shares (web/status.py), when the store gave them."""
_WAITING = frozenset({Reason.NOT_RUN, Reason.NOT_ATTESTED, Reason.UNCONFIGURED})
FACT_CHARS = 400
"""Longer fact values (a body, stdout) are cut in the page; /status JSON has them whole."""


def wants_html(accept: str) -> bool:
    """True when the Accept header prefers text/html to JSON (a browser); `*/*` alone, as
    curl and API clients send, keeps JSON."""
    html_q = json_q = 0.0
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if kind.lower() in ("text/html", "application/xhtml+xml"):
            html_q = max(html_q, q)
        elif kind.lower() in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, q)
    return html_q > json_q


def state(view: ItemView) -> str:
    """ok (green), warn (amber: waiting for a first run or a person, or an info item failing)
    or bad (red: failing, or recurring work lapsed)."""
    if view.lapsed:
        return "bad"
    if view.passing:
        return "ok"
    if view.reason in _WAITING or view.item.severity.value == "info":
        return "warn"
    return "bad"


def status_page(
    views: list[ChecklistView],
    now: float,
    attest: bool = False,
    attester: bool = False,
    csrf: str = "",
    *,
    redactor: Redactor,
    history: History = None,
) -> str:
    """The live page. `attest` (some token may attest) adds an Attest form to manual items,
    shown once the viewer pastes a token, or at once when the `attester` viewer logged in with
    one (the browser then sends its credentials with the form, and `csrf`, the login's
    anti-forgery token, in the X-CSRF-Token header)."""
    return _page(
        views,
        now,
        redactor,
        live=True,
        attest=attest,
        attester=attester,
        csrf=csrf,
        history=history,
    )


def report_page(views: list[ChecklistView], now: float, *, redactor: Redactor) -> str:
    """The same page as a document to keep or send: every section open, nothing interactive."""
    return _page(views, now, redactor, live=False, attest=False)


def _page(
    views: list[ChecklistView],
    now: float,
    redactor: Redactor,
    live: bool,
    attest: bool,
    attester: bool = False,
    csrf: str = "",
    history: History = None,
) -> str:
    """The whole page, masked once more as HTML: a secret in a title or a note is escaped
    there, and the redactor knows each secret's escaped form too."""
    ready = all(v.ready for v in views)
    names = ", ".join(headings(v.checklist.display_title)[-1] for v in views)
    title = f"{'Ready' if ready else 'Not ready'}: {names}"
    colour = "%231f9d55" if ready else "%23d64545"
    nav = ""
    if len(views) > 1:
        nav = "<nav class='jump'>" + "".join(
            f"<a href='#{escape(v.checklist.name)}'><span class='pill {_tone(v)}'>"
            f"{v.score:.0%}</span> {escape(headings(v.checklist.display_title)[-1])}</a>"
            for v in views
        )
        nav += "</nav>"
    token = _ATTEST_SETUP if attest else ""
    links = (
        "<a href=''>refresh</a> · <a href='metrics'>metrics</a> · "
        "<a href='status?format=json'>json</a>"
        if live
        else "report"
    )
    render = _Render(now, live, attest, redactor, history)
    body = "".join(_checklist(v, render) for v in views)
    script = "<script src='static/status.js'></script>" if live else ""
    style = f"<style>{STATUS_CSS}</style>"
    if live:
        style = "<link rel='stylesheet' href='static/status.css'>"
    if csrf:
        style += f"<meta name='csrf-token' content='{escape(csrf)}'>"
    return redactor.known(
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='color-scheme' content='light dark'>"
        f"<title>{escape(title)}</title>"
        f"<link rel='icon' href=\"data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' "
        f"viewBox='0 0 16 16'><circle cx='8' cy='8' r='7' fill='{colour}'/></svg>\">"
        f"{style}</head>"
        f"<body data-attester='{int(attester)}'>"
        "<input type='checkbox' id='problems' class='sr-only'>"
        "<header class='top'><span class='brand'>readiness</span>"
        f"<span class='asof'>as of <time>{when(now)}</time> · {links}</span>"
        "<label for='problems' class='chip'>problems only</label>"
        f"{token}</header><main>{nav}{body}</main>{script}</body></html>\n"
    )


def _tone(view: ChecklistView) -> str:
    if view.ready and all(v.passing for v in view.items):
        return "ok"
    return "bad" if any(state(v) == "bad" for v in view.items) else "warn"


def _bar(states: list[str]) -> str:
    """The passing, waiting and failing shares of `states` as a bar's segments."""
    total = max(len(states), 1)
    return "".join(
        f"<i class='{k}' style='width:{states.count(k) * 100 / total:.2f}%'></i>"
        for k in ("ok", "warn", "bad")
    )


def _checklist(view: ChecklistView, render: _Render) -> str:
    checklist = view.checklist
    parts = headings(checklist.display_title)
    states = [state(item) for item in view.items]
    counts = {k: states.count(k) for k in ("ok", "warn", "bad")}
    bar = _bar(states)
    badges = [
        f"<span class='badge {'ok' if view.ready else 'bad'}'>"
        f"{'READY' if view.ready else 'NOT READY'}</span>"
    ]
    if view.go_live is not None:
        go_live = view.go_live
        text = f"live since {when(go_live)}" if view.live else f"go-live {when(go_live)}"
        badges.append(f"<span class='badge {'live' if view.live else 'neutral'}'>{text}</span>")
    else:
        badges.append("<span class='badge neutral'>no go-live set</span>")
    overline = "".join(f"<p class='over'>{escape(p)}</p>" for p in parts[:-1])
    legend = (
        f"<span class='n ok'>{counts['ok']} passing</span>"
        f"<span class='n bad'>{counts['bad']} failing</span>"
        f"<span class='n warn'>{counts['warn']} waiting</span>"
    )
    head = (
        f"<section class='checklist' id='{escape(checklist.name)}'>"
        f"<div class='summary'><div class='ring {_tone(view)}' style='--p:{view.score * 100:.1f}'>"
        f"<span>{view.score:.0%}</span></div><div class='sumtext'>{overline}"
        f"<h1>{escape(parts[-1])}</h1>"
        f"<p class='badges'>{''.join(badges)}<code class='name'>{escape(checklist.name)}</code>"
        f"</p><p class='legend'>{legend}</p><div class='bar' title='{escape(summary(view))}'>"
        f"{bar}</div></div></div>"
    )
    sections = []
    for section, new_headings in outline(view):
        # A heading with no items of its own (an "Overview") is shown as a heading only.
        shown = new_headings if not section.items else new_headings[:-1]
        groups = "".join(
            f"<h{min(depth + 2, 6)} class='group'>{escape(text)}</h{min(depth + 2, 6)}>"
            for depth, text in shown
        )
        sections.append(groups + (_section(view, section, render) if section.items else ""))
    return head + "".join(sections) + "</section>"


def _section(checklist: ChecklistView, section: SectionView, render: _Render) -> str:
    states = [state(v) for v in section.items]
    all_ok = all(s == "ok" for s in states)
    passing = sum(v.passing for v in section.items)
    leaf = headings(section.section.display_title)[-1]
    is_open = " open" if not render.live or not all_ok else ""
    items = "".join(_item(checklist, v, depth, render) for v, depth in nested(section))
    runnable = any(not_runnable(v.item) is None for v in section.items)
    if render.attest and runnable:
        items = (
            "<li class='runs'>"
            + _run_form(checklist.checklist.name, section=section.section.name)
            + "</li>"
            + items
        )
    mini = _bar(states)
    return (
        f"<details class='section{' all-ok' if all_ok else ''}'{is_open}>"
        f"<summary><h3>{escape(leaf)}</h3><span class='sscore'>{passing}/{len(states)}</span>"
        f"<span class='bar mini'>{mini}</span></summary>"
        f"<ul class='items'>{items}</ul></details>"
    )


def _item(checklist: ChecklistView, view: ItemView, depth: int, render: _Render) -> str:
    now, attest, redactor = render.now, render.attest, render.redactor
    tone = state(view)
    item = view.item
    why = ""
    if not view.passing or view.lapsed or view.waiver is not None:
        text = "; ".join(why_not(view, redactor)).replace("**", "")
        why = f"<span class='why'>{escape(text)}</span>"
    glyph = {"ok": "✓", "warn": "…", "bad": "✕"}[tone]
    label = (
        "blocked" if view.blocked else {"ok": "passing", "warn": "waiting", "bad": "failing"}[tone]
    )
    summary_row = (
        f"<summary><span class='dot' role='img' aria-label='{label}'>{glyph}</span>"
        f"<span class='main'><span class='t'>{_INLINE.renderInline(item.title)}</span>{why}"
        f"</span><span class='right'>{_when(view, now)}"
        f"<span class='kind'>{escape(item.kind)}</span></span></summary>"
    )
    evidence = _evidence(view, now, redactor, render.history)
    if attest and item.kind == MANUAL:
        evidence += _attest_form(checklist.checklist.name, item.id)
    elif attest and not_runnable(item) is None:
        evidence += _run_form(checklist.checklist.name, item=item.id)
    return (
        f"<li class='item {tone}{' blocked' if view.blocked else ''} depth-{min(depth, 3)}'"
        f" id='{escape(checklist.checklist.name)}"
        f"--{escape(item.id)}'><details>{summary_row}<div class='evidence'>{evidence}</div>"
        "</details></li>"
    )


def _when(view: ItemView, now: float) -> str:
    if view.lapsed and view.due is not None:
        lapsed_at = view.due + view.item.grace.total_seconds()
        return f"<span class='when bad'>lapsed {ago(now - lapsed_at)} ago</span>"
    if view.due is not None:
        every = view.item.every.total_seconds() if view.item.every else 0
        soon = " warn" if view.due - now < every / 10 else ""
        return (
            f"<span class='when{soon}' title='{when(view.due)}'>due in {ago(view.due - now)}</span>"
        )
    attestation = view.state.attestation
    if view.item.kind == MANUAL and attestation is not None:
        return (
            f"<span class='when' title='{when(attestation.at)}'>attested by "
            f"{escape(attestation.by)} {ago(now - attestation.at)} ago</span>"
        )
    success = view.state.last_success
    if success and view.item.kind != MANUAL:
        return f"<span class='when' title='{when(success)}'>passed {ago(now - success)} ago</span>"
    return ""


def _evidence(view: ItemView, now: float, redactor: Redactor, history: History = None) -> str:
    doc = item_status(view, redactor, history)  # secrets masked
    rows: list[tuple[str, str]] = [
        ("state", f"<b>{view.reason.value}</b> · {REASON_HELP[view.reason]}"),
        ("severity", escape(doc["severity"])),
    ]
    result = view.state.result
    last_run = result.started_at if result and view.item.kind != MANUAL else None
    success = view.state.last_success if view.item.kind != MANUAL else None
    for label, ts in (("last run", last_run), ("last success", success)):
        if ts:
            rows.append((label, f"{when(ts)} ({ago(now - ts)} ago)"))
    if (attestation := view.state.attestation) is not None:
        by = f"{escape(attestation.by)}, {when(attestation.at)} ({ago(now - attestation.at)} ago)"
        rows.append(("attested", by))
        if attestation.note:
            rows.append(("note", escape(attestation.note)))
    if view.due is not None:
        rows.append(("due", f"{when(view.due)}" + (" — lapsed" if view.lapsed else "")))
    if "history" in doc:
        rows += _history_rows(doc["history"])
    if doc.get("duration_seconds") is not None and view.item.kind != MANUAL:
        rows.append(("took", f"{doc['duration_seconds'] * 1000:.0f} ms"))
    out = "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"
    if view.item.kind != MANUAL:
        out += "<ul class='expect'>" + "".join(
            _condition(text, doc["failed"], judged=view.reason in (Reason.OK, Reason.CONDITION))
            for text in doc["expect"]
        )
        out += "</ul>"
    if doc["message"]:
        out += f"<p class='message'>{escape(doc['message'])}</p>"
    if doc["facts"]:
        out += "<table class='facts'><tbody>" + "".join(
            f"<tr><th>{escape(str(k))}</th><td>{escape(_fact(v))}</td></tr>"
            for k, v in sorted(doc["facts"].items())
        )
        out += "</tbody></table>"
    if view.item.description:
        out += f"<p class='desc'>{_INLINE.renderInline(view.item.description)}</p>"
    return out


def _history_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The item's passing share over 7 and 30 days and its last state changes."""
    shares = [
        "no data" if summary[k] is None else f"{summary[k]:.1%}"
        for k in ("passing_7d", "passing_30d")
    ]
    rows = [("passing", f"{shares[0]} of 7 d · {shares[1]} of 30 d")]
    if summary["changes"]:
        changes = "<br>".join(
            escape(f"{c['at']} {c['state']}" + (f" ({c['reason']})" if c["reason"] else ""))
            for c in summary["changes"]
        )
        rows.append(("changes", changes))
    return rows


def _condition(text: str, failed: list[str], judged: bool) -> str:
    """One `expect:` condition: held (✓), failed with the measured value (✕), or not judged
    because the probe could not measure."""
    if not judged:
        return f"<li class='unjudged'><code>{escape(text)}</code></li>"
    failure = next((f for f in failed if f == text or f.startswith(f"{text} (")), None)
    if failure is None:
        return f"<li class='held'><code>{escape(text)}</code></li>"
    return f"<li class='broken'><code>{escape(failure)}</code></li>"


def _fact(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        text = ", ".join(map(str, value))
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = json.dumps(value)
    return text if len(text) <= FACT_CHARS else text[:FACT_CHARS] + f"… ({len(text)} chars)"


def _attest_form(checklist: str, item: str) -> str:
    return (
        f"<form class='attest' data-checklist='{escape(checklist)}' data-item='{escape(item)}'>"
        "<input name='note' placeholder='note (optional)' maxlength='500' autocomplete='off'>"
        "<button type='submit'>Attest</button><output></output></form>"
    )


def _run_form(checklist: str, item: str = "", section: str = "") -> str:
    """A "Run now" button: POST /api/v1/runs for the item, or every item of the section."""
    scope = f"data-item='{escape(item)}'" if item else f"data-section='{escape(section)}'"
    label = "Run now" if item else "Run section now"
    return (
        f"<form class='run' data-checklist='{escape(checklist)}' {scope}>"
        f"<button type='submit'>{label}</button><output></output></form>"
    )


_ATTEST_SETUP = (
    "<details class='token'><summary class='chip'>attest</summary><form id='token-form'>"
    "<label>Token <input type='password' id='token' autocomplete='off' required></label>"
    "<label>Your name <input id='by' autocomplete='name' required></label>"
    "<button type='submit'>Use</button> <button type='button' id='forget'>Forget</button>"
    "<small>Kept in this tab only; manual items then show an Attest button, probed items and"
    " sections a Run now button.</small>"
    "</form></details>"
)


def static_file(name: str) -> str:
    """A file of the page's static/ folder (package data)."""
    return (files("exporter.web") / "static" / name).read_text(encoding="utf-8")


STATUS_CSS = static_file("status.css")
"""The page's style: served as /static/status.css, and inline in the report."""
