"""The renderings of the live checklist: Markdown in the document's shape, HTML, Accept."""

from __future__ import annotations

import pytest

from exporter.evaluate import evaluate
from exporter.importing.mdchecklist import SEPARATOR
from exporter.loader import parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.render import REASON_HELP, markdown
from exporter.results import Attestation, ItemKey, ItemState, Result
from exporter.web.pages import report_page, status_page, wants_html

DAY = 86400.0
CONFIG = f"""
checklists:
  - name: ops
    title: "Readiness{SEPARATOR}Ops"
    sections:
      - name: pre-infra
        title: "Pre{SEPARATOR}Infra"
        items:
          - id: disk
            title: "**Disk**: has `space`"
            disk: {{path: /}}
          - id: keys
            title: API keys
            manual: {{}}
          - id: tradier
            title: Tradier key
            parent: keys
            manual: {{}}
      - name: pre-security
        title: "Pre{SEPARATOR}Security"
        items:
          - id: tls
            title: Certificate valid <script>alert(1)</script>
            tls: {{host: 127.0.0.1}}
      - name: daily
        title: Daily
        items:
          - id: backups
            title: Verify backups completed
            every: 1d
            grace: 2h
            manual: {{}}
"""


def views(now: float) -> list:  # type: ignore[type-arg]
    config = parse_config(CONFIG).config
    states = {
        ItemKey("ops", "disk"): ItemState(
            Result(True, Reason.OK, now - 60, 0.01, {"free_ratio": 0.5}), now - 60, 0.0
        ),
        ItemKey("ops", "tls"): ItemState(
            Result(
                False,
                Reason.CONDITION,
                now - 30,
                0.02,
                {"days_left": 3},
                ("days_left > 14 (got 3)",),
            ),
            None,
            0.0,
        ),
        # attested on day one, never again
        ItemKey("ops", "backups"): ItemState(
            first_seen=0.0, attestation=Attestation("ops", "backups", "alice", DAY, "x")
        ),
    }
    return evaluate(config, states, now)


def test_markdown_report_has_the_documents_shape_ticks_and_lapses() -> None:
    now = 10 * DAY
    text = markdown(views(now), now, redactor=Redactor())
    lines = text.splitlines()
    assert lines[:3] == ["# Readiness", "", "## Ops"]
    assert lines.count("## Pre") == 1  # the shared parent heading appears once
    assert "### Infra" in lines and "### Security" in lines and "## Daily" in lines
    assert "- [x] **Disk**: has `space` — last success 1970-01-10 23:59 UTC" in lines
    assert "  - [ ] Tradier key — not attested" in lines  # nested under its parent
    assert any(
        line.startswith("- [ ] Certificate valid") and "condition: days_left > 14 (got 3)" in line
        for line in lines
    )
    backups = next(line for line in lines if "Verify backups completed" in line)
    assert backups.startswith("- [ ] ") and "**lapsed**" in backups
    assert "Score 20%: 1 of 5 items passing, not ready, 1 lapsed" in text


def test_html_pages_escape_titles_and_show_states() -> None:
    now = 10 * DAY
    page = status_page(views(now), now, attest=True, redactor=Redactor())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "<strong>Disk</strong>: has <code>space</code>" in page
    assert "class='item ok depth-0' id='ops--disk'" in page
    assert "class='item bad depth-0' id='ops--tls'" in page
    assert "class='item warn depth-1' id='ops--tradier'" in page
    assert "lapsed 7 d 22 h ago" in page
    assert page.count("<form class='attest'") == 3  # the manual items only
    report = report_page(views(now), now, redactor=Redactor())
    assert "<form" not in report and "<script>" not in report
    assert report.count("<details class='section") == report.count(" open>")


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.9, application/json;q=0.1", True),
        ("text/html;q=bad", False),
    ],
)
def test_status_negotiates_html_only_for_clients_that_prefer_it(accept: str, html: bool) -> None:
    assert wants_html(accept) is html


def test_headings_with_no_items_are_given_back_in_order_as_headings() -> None:
    config = parse_config(
        f"""
checklists:
  - name: doc
    title: Launch
    sections:
      - {{name: overview, title: Overview, items: []}}
      - name: pre-infra
        title: "Pre{SEPARATOR}Infra"
        items:
          - {{id: keys, title: API keys, manual: {{}}}}
      - {{name: pre-risk, title: "Pre{SEPARATOR}Risk assessment", items: []}}
      - {{name: after, title: After, items: []}}
"""
    ).config
    now = 10 * DAY
    found = evaluate(config, {}, now)
    text = markdown(found, now, redactor=Redactor())
    assert [line for line in text.splitlines() if line.startswith("#")] == [
        "# Launch",
        "## Overview",
        "## Pre",
        "### Infra",
        "### Risk assessment",
        "## After",
    ]
    assert "## Overview\n\n## Pre\n\n### Infra\n\n- [ ] API keys" in text
    assert text.endswith("### Risk assessment\n\n## After\n")
    page = report_page(found, now, redactor=Redactor())
    shown = [h.split(">")[-1] for h in page.split("</h")[:-1]]
    assert [h for h in shown if h in {"Overview", "Pre", "Infra", "Risk assessment", "After"}] == [
        "Overview",
        "Pre",
        "Infra",
        "Risk assessment",
        "After",
    ]
    assert page.count("<details class='section") == 1  # the one section with items


def test_every_reason_has_its_explanation_for_the_page() -> None:
    assert set(REASON_HELP) == set(Reason)
