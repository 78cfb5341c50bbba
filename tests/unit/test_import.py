"""`import`: the fixture checklists, and any Markdown with checkboxes, become valid config."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.config import Item, Section
from exporter.importing.importer import (
    FillError,
    Imported,
    fill,
    import_checklist,
    item_slug,
    placeholders,
    render_yaml,
    summary,
)
from exporter.importing.mdchecklist import SEPARATOR, decode, parse, repair
from exporter.loader import LoadedConfig, parse_config

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checklists"


def source(name: str) -> str:
    return decode((FIXTURES / f"{name}.md").read_bytes())


def load(doc: Imported) -> tuple[str, LoadedConfig]:
    """The YAML import writes and the config it loads to, on the placeholders' own defaults
    whatever the test machine has set."""
    yaml_text = render_yaml(doc)
    with pytest.MonkeyPatch.context() as env:
        for placeholder in placeholders(doc):
            env.delenv(placeholder.name, raising=False)
        return yaml_text, parse_config(yaml_text, f"{doc.name}.yaml")


def imported(text: str, name: str = "doc") -> tuple[str, LoadedConfig]:
    return load(import_checklist(text, name, f"{name}.md"))


def sections_of(loaded: LoadedConfig) -> tuple[Section, ...]:
    return loaded.config.checklists[0].sections


def items_of(loaded: LoadedConfig) -> dict[str, Item]:
    return {item.id: item for section in sections_of(loaded) for item in section.items}


def test_nested_headings_and_headings_without_items_are_kept_in_order() -> None:
    _, loaded = imported(source("payments-api"), "payments-api")
    assert loaded.config.checklists[0].title == "Go-Live Checklist"
    titles = [(s.display_title.split(SEPARATOR), len(s.items)) for s in sections_of(loaded)]
    assert titles == [
        (["Payments API", "Overview"], 0),
        (["Before Launch", "Infrastructure", "Compute"], 5),
        (["Before Launch", "Infrastructure", "Network"], 3),
        (["Before Launch", "Service"], 5),
        (["Before Launch", "Security"], 5),
        (["Before Launch", "Risk assessment"], 0),
        (["Operations", "Daily"], 2),
        (["Operations", "Weekly"], 2),
        (["Operations", "Monthly"], 1),
        (["Sign-off"], 2),
    ]


def test_markers_leading_spaces_nesting_ticks_and_wrapped_lines() -> None:
    text = source("payments-api")
    _, loaded = imported(text)
    items = items_of(loaded)
    doc = parse(text)
    # `* [ ]`, ` * [ ]` and `- [ ]` in one list; `[x]` and `[X]` both tick
    assert [(i.title, i.checked) for i in doc.items if i.line in (23, 24)] == [
        ("Firewall allows only ports 443 and 22", False),
        ("Private subnet for the database", True),
    ]
    assert items["health-endpoint-returns-200"].title == "`/health` endpoint returns 200"
    assert items["metrics-endpoint-exposes-prometheus-metrics"].title.startswith("`/metrics`")
    # a line that wraps onto the next is one item, on one line
    assert items["load-balancer-terminates-tls-forwards-both"].title == (
        "Load balancer terminates TLS and forwards to both hosts, with health checks against"
        " every host every ten seconds"
    )
    assert items["kernel-patched-to-the-current-release"].parent == "base-image"
    assert items["webhook-signing-key-rotated"].parent == "api-keys-stored-secret-manager"
    lines = text.splitlines()
    for item in doc.items:  # each item's line is the line its checkbox is on
        assert "[" in lines[item.line - 1] and item.title.split()[0] in lines[item.line - 1]
    assert sum(item.checked for item in doc.items) == 3


def test_ids_come_from_bold_names_or_first_words_and_stay_unique_and_stable() -> None:
    text = source("payments-api")
    first, loaded = imported(text)
    assert imported(text)[0] == first  # the same document gives the same bytes
    ids = [item.id for section in sections_of(loaded) for item in section.items]
    assert len(ids) == len(set(ids))
    assert ids[:2] == ["capacity", "base-image"]
    assert [i for i in ids if i.startswith("connection-pooling")] == [
        "connection-pooling",
        "connection-pooling-service",
    ]
    assert item_slug("`/health/live` endpoint accessible") == "health-live-endpoint-accessible"


def test_cadence_headings_make_items_recurring_and_conditional_items_info() -> None:
    _, loaded = imported(source("payments-api"))
    every = {
        section.display_title.split(SEPARATOR)[-1]: {
            (i.every.days if i.every else None) for i in section.items
        }
        for section in sections_of(loaded)
        if section.items
    }
    assert every == {
        "Compute": {None},
        "Network": {None},
        "Service": {None},
        "Security": {None},
        "Daily": {1},
        "Weekly": {7},
        "Monthly": {30},
        "Sign-off": {None},
    }
    items = items_of(loaded)
    assert items["review-failed-payment-logs"].grace.total_seconds() > 0
    assert items["reconcile-ledger-against-processor-reports"].severity.value == "info"


def test_front_matter_setext_headings_badges_html_and_shortcodes() -> None:
    _, loaded = imported(source("storefront"), "storefront")
    checklist = loaded.config.checklists[0]
    assert checklist.title == "Storefront Launch Checklist"  # the front matter's, not a heading
    assert [s.display_title.split(SEPARATOR) for s in checklist.sections] == [
        ["Getting started", "Head"],
        ["Getting started", "Performance"],
        ["Getting started", "Accessibility"],
    ]
    items = items_of(loaded)
    # titles as written; ids from the words, without images, link targets, tags or shortcodes
    assert items["doctype"].title.startswith("**Doctype:** ![High](https://img.example.org/")
    assert items["charset"].title == (
        "**Charset:** ![Medium][medium_badge] The charset is declared as UTF-8."
    )
    assert items["favicon-each-page-links-favicon-that"].title.startswith("[Favicon](https://")
    assert "press-ctrl-f5-page-still-renders" in items
    assert items["images-are-compressed-before-upload"].title == (
        'Images are compressed {{< glossary_tooltip text="lossless" term_id="lossless" >}}'
        " before upload"
    )
    assert items["templates-render-without-debug-output"].title == (
        "Templates render without {% raw %}{{ debug }}{% endraw %} output"
    )
    # a checkbox in a code block is an example, one in a block quote an item
    assert "a-quoted-item-still-counts" in items
    assert not any("example inside a code block" in i.title for i in items.values())
    assert len(items) == 11
    # line numbers count the front matter's lines
    assert import_checklist(source("storefront"), "s", "s.md").items[0].line == 22


@pytest.mark.parametrize(
    ("text", "title", "first"),
    [
        ("---\ntitle: [unclosed\n---\n## A\n- [ ] x\n", (), 5),  # not YAML: Markdown
        ("---\n\n# Doc\n- [ ] x\n\n---\n", ("Doc",), 4),  # a rule first, not front matter
        ("---\nowner: me\n---\n# Doc\n- [ ] x\n", ("Doc",), 5),  # no title in it
        ("Intro\n\n---\n\n# Doc\n- [ ] x\n", ("Doc",), 6),  # a rule later on is a rule
        ("---\ntitle: Plain\n...\n- [ ] x\n", ("Plain",), 4),
    ],
)
def test_front_matter_is_set_aside_and_only_front_matter(
    text: str, title: tuple[str, ...], first: int
) -> None:
    doc = parse(text)
    assert doc.title == title
    assert [(i.title, i.line) for i in doc.items] == [("x", first)]


def test_mojibake_is_repaired_in_titles_and_cleaned_out_of_ids() -> None:
    raw = (FIXTURES / "mojibake.md").read_bytes()
    assert "âœ…".encode() in raw  # the fixture really is mojibake
    _, loaded = imported(decode(raw))
    checklist = loaded.config.checklists[0]
    assert checklist.title == "Équipe Café — Release Checklist"
    section = checklist.sections[0]
    assert (section.name, section.title) == ("environment-setup", "✅ Environment Setup")
    assert (section.items[0].id, section.items[0].title) == (
        "cafe-api",
        "**Café API**: réponse en moins de 2s",
    )
    assert section.items[1].title == "Certificats installés ✅"
    assert (checklist.sections[1].title, checklist.sections[1].items) == ("📋 Notes", ())
    # a file in cp1252 rather than UTF-8 is read too
    assert "Café" in decode("- [ ] Café\n".encode("cp1252"))
    assert repair("plain café") == "plain café"


def test_ticked_items_dollars_and_urls_survive_verbatim() -> None:
    text = "# Doc\n## A\n- [x] Costs under $5 (not ${HOME}, nor $$)\n- [ ] See https://u:p@h/x\n"
    _, loaded = imported(text)
    titles = [i.title for i in sections_of(loaded)[0].items]
    assert titles == ["Costs under $5 (not ${HOME}, nor $$)", "See https://u@h/x"]


def test_items_outside_any_heading_and_documents_without_a_title() -> None:
    _, loaded = imported("- [ ] first\n  - [ ] nested\n\n## Later\n1. [X] numbered\n", "plain")
    checklist = loaded.config.checklists[0]
    assert checklist.title == "plain"
    assert [s.display_title for s in checklist.sections] == ["General", "Later"]
    assert checklist.sections[0].items[1].parent == checklist.sections[0].items[0].id


def test_a_subtitle_naming_the_system_joins_the_title_and_an_overview_does_not() -> None:
    named = parse("# Readiness\n\n## Billing Service\n\n## Setup\n- [ ] x\n")
    assert named.title == ("Readiness", "Billing Service")
    assert [s.headings for s in named.sections] == [("Setup",)]
    overview = parse("# Readiness\n\n## Overview\n\n## Setup\n- [ ] x\n")
    assert overview.title == ("Readiness",)
    assert [s.headings for s in overview.sections] == [("Overview",), ("Setup",)]


# --- placeholders and --set ---------------------------------------------------------------
def probed_doc() -> Imported:
    """A document whose suggestions use placeholders (the probes' targets)."""
    return import_checklist(source("payments-api"), "payments-api", "payments-api.md")


def test_placeholders_are_found_in_the_specs_with_their_defaults_and_items() -> None:
    doc = probed_doc()
    found = {p.name: p for p in placeholders(doc)}
    assert found, "the fixture has items with a suggested probe"
    for placeholder in found.values():
        assert placeholder.ids
        for ident in placeholder.ids:
            item = next(i for i in doc.items if i.id == ident)
            assert item.suggestion is not None
            assert f"${{{placeholder.name}" in str(item.suggestion.spec)
    with_probe = {i.id for i in doc.items if i.suggestion and "${" in str(i.suggestion.spec)}
    assert with_probe == {ident for p in found.values() for ident in p.ids}


def test_set_writes_the_value_where_the_placeholder_was_and_it_validates() -> None:
    doc = probed_doc()
    placeholder = placeholders(doc)[0]
    value = "https://api.example.com:8443/v1?a=1&b='x' #frag"
    yaml_text, loaded = load(fill(doc, {placeholder.name: value}))
    assert f"${{{placeholder.name}:-{value}}}" in yaml_text.replace("''", "'")
    spec = items_of(loaded)[placeholder.ids[0]].spec.model_dump()
    assert any(value in str(v) or v == value for v in spec.values())
    untouched = fill(doc, {})
    assert untouched is doc


def test_set_with_a_closing_brace_is_written_as_it_is() -> None:
    doc = probed_doc()
    placeholder = placeholders(doc)[0]
    yaml_text, _ = load(fill(doc, {placeholder.name: "a}b$c"}))
    assert "a}b$$c" in yaml_text and f"${{{placeholder.name}" not in yaml_text.split("sections:")[1]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"NOT_USED_ANYWHERE": "x"}, "no suggested probe uses ${NOT_USED_ANYWHERE}"),
        ({"API_TOKEN": "x"}, "looks like a secret"),
    ],
)
def test_set_refuses_unknown_names_and_secrets(values: dict[str, str], message: str) -> None:
    doc = probed_doc()
    if "API_TOKEN" in values:  # a name no probe uses is refused first: make it used
        values = {placeholders(doc)[0].name: "https://app:hunter2@api.example.com"}
    with pytest.raises(FillError, match=message.replace("$", r"\$").replace("{", r"\{")):
        fill(doc, values)


def test_summary_counts_kinds_and_says_which_placeholders_to_fill() -> None:
    doc = probed_doc()
    first = next(i for i in doc.items if i.suggestion is not None)
    assert first.suggestion is not None
    # a placeholder with no default: the file does not validate until it is set
    bare = replace(first, suggestion=replace(first.suggestion, spec={"x": "${API_ROOT}/a"}))
    section = replace(doc.sections[1], items=(bare,))
    lines = summary(replace(doc, sections=(doc.sections[0], section)), "<stdout>", {})
    kind = first.suggestion.kind
    assert lines == [
        "<stdout>: 1 item in 2 sections (1 heading with no items, kept for the report)",
        f"  probed: 1 ({kind} 1)",
        "  manual: 0, attested with `readiness-exporter attest --config FILE payments-api ITEM"
        " --by NAME`",
        "  placeholders (fill with --set NAME=VALUE, or set them where the exporter runs):",
        f"    API_ROOT (no default: set it, or validate fails), used by {first.id}",
        "  next: readiness-exporter check --config FILE",
    ]


# --- property: any Markdown with checkbox lines imports to a config that validates -------
CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff")
TRICKY = ["$", "${X}", "$$", "{", "}", "[", "]", "#", "*", "`", ":", "'", '"', "\\", "|", ">"]
TRICKY += ["- ", "**", "âœ…", "✅", SEPARATOR, "://a:b@h", "go live", "!", "&", "%", "@", " "]
TRICKY += ["{{< x >}}", "{% y %}", "<b>", "![i](u)", "[l](u) - ", "==="]
WORDS = st.lists(
    st.one_of(st.text(alphabet=CHARS, max_size=8), st.sampled_from(TRICKY)), max_size=6
).map("".join)
LINE = st.one_of(
    st.builds(lambda n, t: "#" * n + " " + t, st.integers(1, 6), WORDS),
    st.builds(
        lambda indent, mark, tick, t: " " * indent + f"{mark} [{tick}] {t}",
        st.sampled_from([0, 1, 2, 4]),
        st.sampled_from(["-", "*", "+", "1."]),
        st.sampled_from([" ", "x", "X"]),
        WORDS,
    ),
    WORDS,
    st.just(""),
    st.just("```"),
    st.just("---"),
    st.just("title: t"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, max_size=25), box=WORDS)
@example(lines=[], box="A$://0:0@")  # the loader drops `$$` pairs, then looks
def test_any_markdown_with_checkboxes_imports_to_a_valid_config(lines: list[str], box: str) -> None:
    text = "\n".join([*lines, f"- [ ] {box}"])
    doc = import_checklist(text, "prop", "prop.md")
    if not doc.items:
        return  # e.g. the last line sat inside a code fence: `import` refuses, with a message
    _, loaded = load(doc)
    assert sum(len(s.items) for s in sections_of(loaded)) == len(doc.items)


def test_front_matter_with_a_date_python_refuses_still_imports() -> None:
    doc = parse("---\ntitle: Launch\ndate: 2024-02-30\n---\n- [ ] x\n")
    assert doc.title == ("Launch",)
    assert [i.title for i in doc.items] == ["x"]


@pytest.mark.parametrize("unclosed", ["{{< ", "[a](", "![b](", "(if ", "<"])
def test_unclosed_markup_in_a_long_title_imports_in_linear_time(unclosed: str) -> None:
    # Before its spans were bounded, 40 KB of `{{< ` took 24 s (quadratic); now about 1 s.
    started = time.perf_counter()
    doc = import_checklist(f"- [ ] {unclosed * 10_000}\n", "long", "long.md")
    assert len(doc.items) == 1
    assert time.perf_counter() - started < 8


# --- what import infers for on-call: dependencies and job pings ------------------------------
MARKET = Path(__file__).parents[1] / "fixtures" / "checklists" / "market-collector.md"


def test_items_on_the_same_database_depend_on_the_one_item_saying_it_runs() -> None:
    doc = import_checklist(MARKET.read_text(), "market", "market-collector.md")
    needs = {i.id: i.depends_on for i in doc.items if i.depends_on}
    assert needs == {
        "postgresql-15-installed-and-configured": ("postgresql-running-and-accessible",),
        "ssl-tls-enabled-for-database-connections": ("postgresql-running-and-accessible",),
        "query-timeouts-configured": ("postgresql-running-and-accessible",),
    }
    config = parse_config(render_yaml(doc)).config  # and the written file says so, validly
    written = {i.id: i.depends_on for s in config.checklists[0].sections for i in s.items}
    assert written["query-timeouts-configured"] == ("postgresql-running-and-accessible",)


def test_two_items_saying_the_database_runs_make_no_dependency() -> None:
    text = MARKET.read_text().replace(
        "- [ ] Query timeouts configured", "- [ ] PostgreSQL is up and reachable"
    )
    doc = import_checklist(text, "market", "market-collector.md")
    assert not any(i.depends_on for i in doc.items)


def test_a_job_under_a_daily_heading_becomes_a_ping_item() -> None:
    doc = import_checklist(MARKET.read_text(), "market", "market-collector.md")
    export = next(i for i in doc.items if i.title == "Scheduled export to the warehouse ran")
    assert export.suggestion is not None and export.suggestion.kind == "ping"
    assert export.every == ("1d", "2h")
    assert "readiness-exporter run --url URL" in export.suggestion.note
