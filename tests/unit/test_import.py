"""`import`: the three real checklists, and any Markdown with checkboxes, become valid config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import Item
from exporter.importer import import_checklist, item_slug, render_yaml
from exporter.loader import LoadedConfig, parse_config
from exporter.mdchecklist import SEPARATOR, decode, repair
from exporter.probes import PROBES
from exporter.recognise import PLACEHOLDERS

REPO = Path(__file__).parents[2]
CHECKLISTS = REPO / ".." / "shared" / "checklists"
DOCUMENTS = ("stock-data-collector", "options-trading-engine", "signals-pipeline")
CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[ xX]\](?:\s|$)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@pytest.fixture(autouse=True)
def _no_placeholders_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The output must validate on its own defaults, whatever the test machine has set."""
    for name in PLACEHOLDERS:
        monkeypatch.delenv(name, raising=False)


def source(name: str) -> str:
    return decode((CHECKLISTS / f"{name}.md").read_bytes())


def imported(text: str, name: str = "doc") -> tuple[str, LoadedConfig]:
    yaml_text = render_yaml(import_checklist(text, name, f"{name}.md"))
    return yaml_text, parse_config(yaml_text, f"{name}.yaml")


def items_of(loaded: LoadedConfig) -> dict[str, tuple[str, Item]]:
    """title -> (section title, item)"""
    return {
        item.title: (section.display_title, item)
        for section in loaded.config.checklists[0].sections
        for item in section.items
    }


def heading_paths(text: str) -> list[tuple[str, ...]]:
    """For every checkbox line, the headings above it below the single H1: a line-based
    oracle, independent of the Markdown parser the importer uses."""
    stack: list[tuple[int, str]] = []
    out = []
    for line in text.splitlines():
        if heading := HEADING.match(line):
            level = len(heading.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading.group(2)))
        elif CHECKBOX.match(line):
            out.append(tuple(t for lvl, t in stack if lvl > 1))
    return out


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_checkbox_line_becomes_an_item_under_its_headings(name: str) -> None:
    text = source(name)
    _, loaded = imported(text, name)
    sections = loaded.config.checklists[0].sections
    ordered = [(s.display_title, i) for s in sections for i in s.items]
    expected = heading_paths(text)
    assert len(ordered) == len(expected) == sum(bool(CHECKBOX.match(x)) for x in text.splitlines())
    assert [title for title, _ in ordered] == [SEPARATOR.join(p) for p in expected]
    lines = [
        re.sub(r"^\s*[-*+]\s+\[[ xX]\]\s+", "", x) for x in text.splitlines() if CHECKBOX.match(x)
    ]
    assert [item.title for _, item in ordered] == lines  # verbatim, Markdown and all


def test_titles_come_from_the_document() -> None:
    _, stock = imported(source("stock-data-collector"))
    assert stock.config.checklists[0].title == (
        f"Production Readiness Checklist{SEPARATOR}Stock Data Collection System"
    )
    _, options = imported(source("options-trading-engine"))
    assert options.config.checklists[0].title == "Production Readiness Checklist"


@pytest.mark.parametrize("name", ["stock-data-collector", "options-trading-engine"])
def test_cadence_headings_make_items_recurring(name: str) -> None:
    _, loaded = imported(source(name), name)
    every = {"daily": 1, "weekly": 7, "monthly": 30}
    seen = set()
    for section in loaded.config.checklists[0].sections:
        word = next((w for w in every if w in section.display_title.lower()), None)
        for item in section.items:
            if word is None:
                assert item.every is None, item.id
            else:
                seen.add(word)
                assert item.every is not None and item.every.days == every[word], item.id
                assert item.grace.total_seconds() > 0
    assert seen == set(every)


def kind_and_expect(loaded: LoadedConfig, title: str) -> tuple[str, list[str], Any]:
    _, item = items_of(loaded)[title]
    return item.kind, [c.text for c in item.conditions], item.spec


def test_recognisers_suggest_probes_in_the_stock_collector_checklist() -> None:
    _, loaded = imported(source("stock-data-collector"))
    kind, expect, spec = kind_and_expect(loaded, "`/health` endpoint returns 200")
    assert (kind, expect, spec.url) == ("http", ["status == 200"], "http://127.0.0.1:8000/health")
    kind, expect, _ = kind_and_expect(
        loaded, "`/metrics` endpoint returns Prometheus format metrics"
    )
    assert kind == "http" and "body contains '# TYPE'" in expect
    kind, expect, _ = kind_and_expect(
        loaded, "SSL certificates obtained (if exposing APIs externally)"
    )
    assert kind == "tls" and "days_left > 14" in expect
    kind, expect, spec = kind_and_expect(loaded, "Log files have appropriate permissions (640)")
    assert (kind, expect[0], spec.path) == ("file", "mode == '0640'", "/var/log/app/*.log")
    kind, expect, _ = kind_and_expect(
        loaded, "Production server provisioned with adequate resources (8GB+ RAM, 4+ cores)"
    )
    assert (kind, expect) == ("host", ["memory_total >= 8GB", "cpu_count >= 4"])
    kind, expect, spec = kind_and_expect(loaded, "Backup storage provisioned (500GB+ recommended)")
    assert (kind, expect, spec.path) == ("disk", ["total >= 500GB"], "/var/backups/app")
    assert kind_and_expect(loaded, "Check disk space")[0] == "disk"
    assert kind_and_expect(loaded, "Verify backups completed")[:2] == (
        "file",
        ["exists == true", "age < 26h"],
    )
    kind, expect, _ = kind_and_expect(loaded, "Service runs as non-root user")
    assert (kind, expect) == ("process", ["running == true", "user != 'root'"])
    assert kind_and_expect(loaded, "Service restart policy configured")[0] == "command"
    kind, expect, _ = kind_and_expect(loaded, "PostgreSQL 15+ installed and configured")
    if "postgres" in PROBES:
        assert (kind, expect) == ("postgres", ["version >= 15", "connected == true"])
    else:
        assert kind == "tcp"
    tables = kind_and_expect(loaded, "All required tables created")[:2]
    timeouts = kind_and_expect(loaded, "Query timeouts configured")[:2]
    # which tables is the project's own knowledge: no probe to fill in by hand
    assert tables == ("manual", [])
    assert timeouts == ("postgres", ["setting.statement_timeout > 0ms"])
    # work people do stays manual, whatever else its words say
    for title in ("Firewall rules configured", "Restore procedure tested", "Runbook created"):
        assert kind_and_expect(loaded, title)[0] == "manual", title
    assert kind_and_expect(loaded, "Health endpoint tests pass")[0] == "manual"


def test_recognisers_on_bold_name_items_and_numeric_targets() -> None:
    _, options = imported(source("options-trading-engine"))
    # a latency target names no metric and a Python version no environment: they stay manual
    for title in (
        "**Response Times**: API response times within acceptable limits (<2s)",
        "**Python Environment**: Python 3.9+ installed and virtual environment created",
    ):
        assert kind_and_expect(options, title)[0] == "manual", title
    _, signals = imported(source("signals-pipeline"))
    kind, _, spec = kind_and_expect(
        signals, "**Encryption in Transit**: TLS 1.3 for all connections"
    )
    assert (kind, spec.min_version) == ("tls", "TLS1.3")
    kind, expect, _ = kind_and_expect(signals, "**API Errors**: Alert if error rate >5%")
    assert (kind, expect) == ("manual", [])


def test_ids_are_slugs_unique_within_the_checklist_and_stable() -> None:
    text = source("options-trading-engine")
    first, loaded = imported(text)
    assert imported(text)[0] == first  # the same document gives the same bytes
    items = items_of(loaded)
    assert items["**Python Environment**: Python 3.9+ installed and virtual environment created"][
        1
    ].id == ("python-environment")
    pooling = [i.id for _, i in items.values() if i.title.startswith("**Connection Pooling**")]
    assert pooling == ["connection-pooling", "connection-pooling-performance-optimization"]
    assert items["Tradier API Key"][1].parent == "api-keys"
    sections = [s.name for s in loaded.config.checklists[0].sections]
    assert sections[0] == "pre-production-validation-environment-setup"
    assert item_slug("`/health/live` endpoint accessible") == "health-live-endpoint-accessible"


def test_mojibake_is_repaired_in_titles_and_cleaned_out_of_ids() -> None:
    text = "# Go\n\n### âœ… Environment Setup\n- [ ] **CafÃ©**: beans âœ… in stock\n"
    _, loaded = imported(text)
    section = loaded.config.checklists[0].sections[0]
    assert (section.name, section.title) == ("environment-setup", "✅ Environment Setup")
    assert (section.items[0].id, section.items[0].title) == ("cafe", "**Café**: beans ✅ in stock")
    # a file in cp1252 rather than UTF-8 is read too
    assert "Café" in decode("- [ ] Café\n".encode("cp1252"))
    assert repair("plain café") == "plain café"


def test_ticked_items_dollars_and_urls_survive_verbatim() -> None:
    text = "# Doc\n## A\n- [x] Costs under $5 (not ${HOME}, nor $$)\n- [ ] See https://u:p@h/x\n"
    _, loaded = imported(text)
    titles = [i.title for i in loaded.config.checklists[0].sections[0].items]
    assert titles == ["Costs under $5 (not ${HOME}, nor $$)", "See https://u@h/x"]


def test_items_outside_any_heading_and_documents_without_a_title() -> None:
    _, loaded = imported("- [ ] first\n  - [ ] nested\n\n## Later\n1. [X] numbered\n", "plain")
    checklist = loaded.config.checklists[0]
    assert checklist.title == "plain"
    assert [s.display_title for s in checklist.sections] == ["General", "Later"]
    assert checklist.sections[0].items[1].parent == checklist.sections[0].items[0].id


# --- property: any Markdown with checkbox lines imports to a config that validates -------
CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff")
TRICKY = ["$", "${X}", "$$", "{", "}", "[", "]", "#", "*", "`", ":", "'", '"', "\\", "|", ">"]
TRICKY += ["- ", "**", "âœ…", "✅", SEPARATOR, "://a:b@h", "go live", "!", "&", "%", "@", " "]
WORDS = st.lists(
    st.one_of(st.text(alphabet=CHARS, max_size=8), st.sampled_from(TRICKY)), max_size=6
).map("".join)
LINE = st.one_of(
    st.builds(lambda n, t: "#" * n + " " + t, st.integers(1, 6), WORDS),
    st.builds(
        lambda indent, mark, tick, t: " " * indent + f"{mark} [{tick}] {t}",
        st.sampled_from([0, 2, 4]),
        st.sampled_from(["-", "*", "+", "1."]),
        st.sampled_from([" ", "x", "X"]),
        WORDS,
    ),
    WORDS,
    st.just(""),
    st.just("```"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, max_size=25), box=WORDS)
def test_any_markdown_with_checkboxes_imports_to_a_valid_config(lines: list[str], box: str) -> None:
    text = "\n".join([*lines, f"- [ ] {box}"])
    doc = import_checklist(text, "prop", "prop.md")
    if not doc.items:
        return  # e.g. the last line sat inside a code fence: `import` refuses, with a message
    loaded = parse_config(render_yaml(doc), "prop.yaml")
    assert sum(len(s.items) for s in loaded.config.checklists[0].sections) == len(doc.items)
