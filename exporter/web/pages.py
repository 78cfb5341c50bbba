"""The /status page for people and `report --format html`: server-rendered HTML, one file.

No framework and nothing fetched from elsewhere: CSS (light and dark, phone first) and, on the
live page, a few lines of script that post attestations with the viewer's token. The live page
loads both from the app (STATUS_CSS, STATUS_JS), as its Content-Security-Policy allows no inline
code; the report, a file to keep, carries its CSS inline.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from markdown_it import MarkdownIt

from exporter.evaluate import ChecklistView, ItemView, SectionView
from exporter.reasons import Reason
from exporter.render import REASON_HELP, headings, nested, outline, summary, why_not
from exporter.times import ago, when
from exporter.web.status import item_status

# Titles are Markdown (`**Name**: text`, `code`); raw HTML in them is shown, never run.
_INLINE = MarkdownIt("commonmark", {"html": False})
_WAITING = frozenset({Reason.NOT_RUN, Reason.NOT_ATTESTED})
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
) -> str:
    """The live page. `attest` (some token may attest) adds an Attest form to manual items,
    shown once the viewer pastes a token, or at once when the `attester` viewer logged in with
    one (the browser then sends its credentials with the form, and `csrf`, the login's
    anti-forgery token, in the X-CSRF-Token header)."""
    return _page(views, now, live=True, attest=attest, attester=attester, csrf=csrf)


def report_page(views: list[ChecklistView], now: float) -> str:
    """The same page as a document to keep or send: every section open, nothing interactive."""
    return _page(views, now, live=False, attest=False)


def _page(
    views: list[ChecklistView],
    now: float,
    live: bool,
    attest: bool,
    attester: bool = False,
    csrf: str = "",
) -> str:
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
    body = "".join(_checklist(v, now, live, attest) for v in views)
    script = "<script src='static/status.js'></script>" if live else ""
    style = f"<style>{STATUS_CSS}</style>"
    if live:
        style = "<link rel='stylesheet' href='static/status.css'>"
    if csrf:
        style += f"<meta name='csrf-token' content='{escape(csrf)}'>"
    return (
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


def _checklist(view: ChecklistView, now: float, live: bool, attest: bool) -> str:
    checklist = view.checklist
    parts = headings(checklist.display_title)
    counts = {"ok": 0, "warn": 0, "bad": 0}
    for item in view.items:
        counts[state(item)] += 1
    total = max(len(view.items), 1)
    bar = "".join(
        f"<i class='{k}' style='width:{counts[k] * 100 / total:.2f}%'></i>"
        for k in ("ok", "warn", "bad")
    )
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
        sections.append(
            groups + (_section(view, section, now, live, attest) if section.items else "")
        )
    return head + "".join(sections) + "</section>"


def _section(
    checklist: ChecklistView, section: SectionView, now: float, live: bool, attest: bool
) -> str:
    states = [state(v) for v in section.items]
    all_ok = all(s == "ok" for s in states)
    passing = sum(v.passing for v in section.items)
    leaf = headings(section.section.display_title)[-1]
    is_open = " open" if not live or not all_ok else ""
    items = "".join(_item(checklist, v, depth, now, attest) for v, depth in nested(section))
    total = max(len(states), 1)
    mini = "".join(
        f"<i class='{k}' style='width:{states.count(k) * 100 / total:.2f}%'></i>"
        for k in ("ok", "warn", "bad")
    )
    return (
        f"<details class='section{' all-ok' if all_ok else ''}'{is_open}>"
        f"<summary><h3>{escape(leaf)}</h3><span class='sscore'>{passing}/{len(states)}</span>"
        f"<span class='bar mini'>{mini}</span></summary>"
        f"<ul class='items'>{items}</ul></details>"
    )


def _item(checklist: ChecklistView, view: ItemView, depth: int, now: float, attest: bool) -> str:
    tone = state(view)
    item = view.item
    why = ""
    if not view.passing or view.lapsed:
        text = "; ".join(why_not(view)).replace("**", "")
        why = f"<span class='why'>{escape(text)}</span>"
    glyph = {"ok": "✓", "warn": "…", "bad": "✕"}[tone]
    label = {"ok": "passing", "warn": "waiting", "bad": "failing"}[tone]
    summary_row = (
        f"<summary><span class='dot' role='img' aria-label='{label}'>{glyph}</span>"
        f"<span class='main'><span class='t'>{_INLINE.renderInline(item.title)}</span>{why}"
        f"</span><span class='right'>{_when(view, now)}"
        f"<span class='kind'>{escape(item.kind)}</span></span></summary>"
    )
    evidence = _evidence(view, now)
    if attest and item.kind == "manual":
        evidence += _attest_form(checklist.checklist.name, item.id)
    return (
        f"<li class='item {tone} depth-{min(depth, 3)}' id='{escape(checklist.checklist.name)}"
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
    if view.item.kind == "manual" and attestation is not None:
        return (
            f"<span class='when' title='{when(attestation.at)}'>attested by "
            f"{escape(attestation.by)} {ago(now - attestation.at)} ago</span>"
        )
    success = view.state.last_success
    if success and view.item.kind != "manual":
        return f"<span class='when' title='{when(success)}'>passed {ago(now - success)} ago</span>"
    return ""


def _evidence(view: ItemView, now: float) -> str:
    doc = item_status(view)  # secrets already masked
    rows: list[tuple[str, str]] = [
        ("state", f"<b>{view.reason.value}</b> · {REASON_HELP[view.reason]}"),
        ("severity", escape(doc["severity"])),
    ]
    result = view.state.result
    last_run = result.started_at if result and view.item.kind != "manual" else None
    success = view.state.last_success if view.item.kind != "manual" else None
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
    if doc.get("duration_seconds") is not None and view.item.kind != "manual":
        rows.append(("took", f"{doc['duration_seconds'] * 1000:.0f} ms"))
    out = "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"
    if view.item.kind != "manual":
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


_ATTEST_SETUP = (
    "<details class='token'><summary class='chip'>attest</summary><form id='token-form'>"
    "<label>Token <input type='password' id='token' autocomplete='off' required></label>"
    "<label>Your name <input id='by' autocomplete='name' required></label>"
    "<button type='submit'>Use</button> <button type='button' id='forget'>Forget</button>"
    "<small>Kept in this tab only; manual items then show an Attest button.</small>"
    "</form></details>"
)

# /status#checklist--item (a link from an alert or a chat) opens that item's evidence.
_OPEN_LINKED = """
const linked = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
if (linked && linked.matches('li.item')) {
  linked.querySelector('details').open = true;
  linked.closest('details.section').open = true;
}
"""

# Posts to the attestation API (DESIGN.md: POST /api/v1/attestations, bearer token with the
# attest role); the token lives in sessionStorage, so it goes when the tab closes. With the
# browser's Basic login instead, the page's anti-forgery token goes along.
_SCRIPT = """
(() => {
  if (!document.getElementById('token-form')) return;
  const b = document.body, s = sessionStorage;
  const csrf = document.querySelector('meta[name=csrf-token]');
  const on = () => b.classList.toggle(
    'has-token', !!s.getItem('rt-token') || b.dataset.attester === '1');
  document.getElementById('by').value = localStorage.getItem('rt-by') || '';
  document.getElementById('token-form').addEventListener('submit', e => {
    e.preventDefault();
    s.setItem('rt-token', document.getElementById('token').value.trim());
    localStorage.setItem('rt-by', document.getElementById('by').value.trim());
    document.getElementById('token').value = ''; on();
    e.target.closest('details').open = false;
  });
  document.getElementById('forget').addEventListener('click', () => {
    s.removeItem('rt-token'); on();
  });
  document.querySelectorAll('form.attest').forEach(f => f.addEventListener('submit', async e => {
    e.preventDefault();
    const out = f.querySelector('output'), button = f.querySelector('button');
    button.disabled = true; out.textContent = 'sending…';
    try {
      // Without the user:password@ a page opened that way has in its URL: fetch refuses those.
      const api = new URL('api/v1/attestations', location.href);
      api.username = api.password = '';
      const r = await fetch(api, {
        method: 'POST',
        headers: Object.assign({'Content-Type': 'application/json'}, s.getItem('rt-token')
          ? {'Authorization': 'Bearer ' + s.getItem('rt-token')}
          : csrf ? {'X-CSRF-Token': csrf.content} : {}),
        credentials: 'same-origin',
        body: JSON.stringify({checklist: f.dataset.checklist, item: f.dataset.item,
                              by: localStorage.getItem('rt-by') || 'status page',
                              note: f.note.value})});
      if (r.ok) { out.textContent = 'attested'; setTimeout(() => location.reload(), 600); return; }
      out.textContent = r.status + ' ' + ((await r.text()).slice(0, 200) || r.statusText);
    } catch (err) { out.textContent = String(err); }
    button.disabled = false;
  }));
  on();
})();
"""

STATUS_JS = _OPEN_LINKED + _SCRIPT

STATUS_CSS = """
:root{--bg:#f4f6f8;--card:#fff;--fg:#18202c;--muted:#5b6577;--line:#e2e6ec;--code:#eef1f5;
--ok:#16884a;--ok-bg:#e3f5ea;--warn:#b26b00;--warn-bg:#fff2d6;--bad:#cf3535;--bad-bg:#fde6e6;
--accent:#2458c6}
@media (prefers-color-scheme:dark){:root{--bg:#0e1116;--card:#161a21;--fg:#e5e8ee;--muted:#9aa3b3;
--line:#283040;--code:#212835;--ok:#3fcf7f;--ok-bg:#123020;--warn:#f1b53d;--warn-bg:#35280f;
--bad:#ff6b6b;--bad-bg:#3b1818;--accent:#7aa7ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",sans-serif;
-webkit-text-size-adjust:100%}
a{color:var(--accent)}
code{font:.86em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);
padding:.05rem .3rem;border-radius:4px}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
.top{position:sticky;top:0;z-index:3;display:flex;flex-wrap:wrap;align-items:center;gap:.4rem .9rem;
padding:.55rem 1rem;background:var(--card);border-bottom:1px solid var(--line)}
.brand{font-weight:700;letter-spacing:.01em}
.asof{color:var(--muted);font-size:.85rem;flex:1}
.chip{display:inline-block;cursor:pointer;user-select:none;font-size:.8rem;padding:.2rem .65rem;
border:1px solid var(--line);border-radius:999px;color:var(--muted);background:var(--card)}
#problems:checked~.top label[for=problems]{background:var(--fg);color:var(--card);
border-color:var(--fg)}
#problems:checked~main li.item.ok,#problems:checked~main details.section.all-ok{display:none}
#problems:focus-visible~.top label[for=problems]{outline:2px solid var(--accent)}
.token{position:relative}
body[data-attester='1'] .token{display:none}
.token>summary{list-style:none}
.token form{position:absolute;right:0;top:2.2rem;width:min(20rem,90vw);display:grid;gap:.5rem;
padding:.8rem;background:var(--card);border:1px solid var(--line);border-radius:10px;
box-shadow:0 8px 24px rgba(0,0,0,.15)}
.token label{display:grid;gap:.2rem;font-size:.85rem}
.token small{color:var(--muted)}
input,button{font:inherit;padding:.35rem .55rem;border-radius:6px;border:1px solid var(--line);
background:var(--bg);color:var(--fg)}
button{cursor:pointer;background:var(--accent);color:#fff;border-color:var(--accent)}
button[type=button]{background:transparent;color:var(--muted);border-color:var(--line)}
main{max-width:68rem;margin:0 auto;padding:1rem .9rem 3rem}
.jump{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem}
.jump a{text-decoration:none;color:var(--fg);background:var(--card);border:1px solid var(--line);
border-radius:8px;padding:.3rem .6rem;font-size:.9rem}
.pill{font-weight:700;font-variant-numeric:tabular-nums}
.pill.ok{color:var(--ok)}.pill.warn{color:var(--warn)}.pill.bad{color:var(--bad)}
.checklist{margin-bottom:2.5rem}
.summary{display:flex;gap:1.2rem;align-items:center;background:var(--card);
border:1px solid var(--line);border-radius:14px;padding:1rem 1.2rem;margin-bottom:.5rem}
.ring{--c:var(--bad);flex:none;width:92px;height:92px;border-radius:50%;display:grid;
place-items:center;background:conic-gradient(var(--c) calc(var(--p)*1%),var(--line) 0)}
.ring.ok{--c:var(--ok)}.ring.warn{--c:var(--warn)}
.ring span{width:74px;height:74px;border-radius:50%;background:var(--card);display:grid;
place-items:center;font-size:1.35rem;font-weight:750;font-variant-numeric:tabular-nums}
.sumtext{flex:1;min-width:0}
.over{margin:0;color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.06em}
h1{margin:.1rem 0 .35rem;font-size:1.45rem;line-height:1.2}
.badges{margin:0 0 .4rem;display:flex;flex-wrap:wrap;gap:.35rem;align-items:center}
.badge{font-size:.72rem;font-weight:700;letter-spacing:.04em;padding:.15rem .55rem;
border-radius:999px;background:var(--code);color:var(--muted)}
.badge.ok,.badge.live{background:var(--ok-bg);color:var(--ok)}
.badge.bad{background:var(--bad-bg);color:var(--bad)}
.name{font-size:.75rem;color:var(--muted)}
.legend{margin:0 0 .45rem;display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.85rem}
.n::before{content:"";display:inline-block;width:.6rem;height:.6rem;border-radius:50%;
margin-right:.35rem;background:var(--c)}
.n.ok{--c:var(--ok)}.n.warn{--c:var(--warn)}.n.bad{--c:var(--bad)}
.bar{display:flex;height:8px;border-radius:4px;overflow:hidden;background:var(--line)}
.bar i{display:block}.bar .ok{background:var(--ok)}.bar .warn{background:var(--warn)}
.bar .bad{background:var(--bad)}
.group{margin:1.6rem 0 .4rem;font-size:1.05rem;color:var(--muted);font-weight:650}
h4.group,h5.group,h6.group{font-size:.95rem;margin-top:1rem}
details.section{background:var(--card);border:1px solid var(--line);border-radius:12px;
margin:.55rem 0;overflow:hidden}
details.section>summary{display:flex;align-items:center;gap:.7rem;padding:.65rem 1rem;
cursor:pointer;list-style:none}
summary::-webkit-details-marker{display:none}
details.section>summary::before{content:"▸";color:var(--muted);transition:transform .15s}
details.section[open]>summary::before{transform:rotate(90deg)}
details.section>summary h3{margin:0;font-size:1rem;flex:1;min-width:0}
.sscore{color:var(--muted);font-size:.85rem;font-variant-numeric:tabular-nums}
.bar.mini{width:90px;height:6px}
ul.items{list-style:none;margin:0;padding:0;border-top:1px solid var(--line)}
li.item{--c:var(--ok);--cbg:var(--ok-bg);border-bottom:1px solid var(--line)}
li.item:last-child{border-bottom:0}
li.warn{--c:var(--warn);--cbg:var(--warn-bg)}li.bad{--c:var(--bad);--cbg:var(--bad-bg)}
li.bad{background:linear-gradient(90deg,var(--cbg) 0,transparent 40%)}
li.item>details>summary{display:grid;grid-template-columns:auto 1fr auto;gap:.15rem .75rem;
align-items:start;padding:.55rem 1rem;cursor:pointer;list-style:none}
li.item>details>summary:hover{background:var(--bg)}
li.depth-1>details>summary{padding-left:2.4rem}li.depth-2>details>summary{padding-left:3.6rem}
li.depth-3>details>summary{padding-left:4.8rem}
.dot{width:1.25rem;height:1.25rem;border-radius:50%;display:grid;place-items:center;
background:var(--c);color:var(--card);font-size:.75rem;font-weight:800;margin-top:.1rem}
.main{min-width:0;display:flex;flex-direction:column;gap:.1rem}
.t{overflow-wrap:anywhere}
.why{color:var(--c);font-size:.83rem;overflow-wrap:anywhere}
.right{display:flex;gap:.5rem;align-items:center;justify-content:flex-end;white-space:nowrap;
padding-top:.1rem}
.when{color:var(--muted);font-size:.8rem}
.when.warn{color:var(--warn)}.when.bad{color:var(--bad);font-weight:650}
.kind{font:.7rem ui-monospace,SFMono-Regular,Menlo,monospace;color:var(--muted);
border:1px solid var(--line);border-radius:4px;padding:.05rem .3rem}
.evidence{padding:.2rem 1rem 1rem 3rem;font-size:.87rem}
.evidence dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .9rem;
margin:.2rem 0 .6rem}
.evidence dt{color:var(--muted)}.evidence dd{margin:0;overflow-wrap:anywhere}
.expect{list-style:none;margin:0 0 .6rem;padding:0;display:grid;gap:.2rem}
.expect li::before{display:inline-block;width:1.2rem;font-weight:800}
.expect .held::before{content:"✓";color:var(--ok)}
.expect .broken::before{content:"✕";color:var(--bad)}
.expect .unjudged::before{content:"·";color:var(--muted)}
.expect .broken code{color:var(--bad)}
.message{margin:.3rem 0 .6rem;padding:.4rem .6rem;border-left:3px solid var(--c);
background:var(--cbg);overflow-wrap:anywhere}
.facts{width:100%;border-collapse:collapse;font:.78rem ui-monospace,SFMono-Regular,Menlo,monospace;
table-layout:fixed}
.facts th{width:34%;text-align:left;font-weight:500;color:var(--muted)}
.facts th,.facts td{border-top:1px solid var(--line);padding:.25rem .4rem;vertical-align:top;
overflow-wrap:anywhere}
form.attest{display:none;gap:.5rem;margin-top:.7rem;flex-wrap:wrap;align-items:center}
body.has-token form.attest{display:flex}
form.attest input{flex:1;min-width:10rem}
form.attest output{font-size:.85rem;color:var(--muted)}
@media (max-width:640px){
body{font-size:15px}
.top{padding:.5rem .75rem}.asof{flex-basis:100%;order:3;font-size:.78rem}
main{padding:.75rem .5rem 2rem}
.summary{gap:.9rem;padding:.85rem .9rem;align-items:flex-start}
.ring{width:68px;height:68px}.ring span{width:54px;height:54px;font-size:1.05rem}
h1{font-size:1.2rem}
.bar.mini{display:none}
details.section>summary{padding:.6rem .75rem}
li.item>details>summary{grid-template-columns:auto 1fr;padding:.55rem .75rem}
.right{grid-column:2;justify-content:flex-start}
li.depth-1>details>summary{padding-left:1.6rem}li.depth-2>details>summary{padding-left:2.4rem}
li.depth-3>details>summary{padding-left:3.2rem}
.evidence{padding:.2rem .75rem .9rem}
.evidence dl{grid-template-columns:1fr;gap:0}.evidence dd{margin-bottom:.35rem}
.facts th{width:40%}
}
@media print{.top label,.token{display:none}.top{position:static}
details.section,li.item{break-inside:avoid}}
"""
