"""From a Markdown checklist to a live one, as users run it: import, validate, check, report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from exporter.importing.mdchecklist import decode, parse
from tests.support.servers import HttpTarget

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checklists"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[-?][^}]*)?\}")
TARGET_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*_(URL|HOST|PORT|DIR|NAME|JOB)")
# Every heading of each fixture, in order, as a reader sees it (the title first): written out
# by hand, so the test does not trust the parser it checks.
HEADINGS = {
    "payments-api": [
        "Go-Live Checklist",
        "Payments API",
        "Overview",
        "Before Launch",
        "Infrastructure",
        "Compute",
        "Network",
        "Service",
        "Security",
        "Risk assessment",
        "Operations",
        "Daily",
        "Weekly",
        "Monthly",
        "Sign-off",
    ],
    "storefront": [
        "Storefront Launch Checklist",  # from the front matter
        "Getting started",
        "Head",
        "Performance",
        "Accessibility",
    ],
    "mojibake": ["Équipe Café — Release Checklist", "✅ Environment Setup", "📋 Notes"],
}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, with no placeholder of a suggested probe (BASE_URL, TLS_PORT,
    LOG_DIR, ...) set by the machine that runs the test."""
    clean = {k: v for k, v in os.environ.items() if not TARGET_VARIABLE.fullmatch(k)}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def headings_of(markdown: str) -> list[str]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]


def shape(markdown: str) -> list[tuple[tuple[str, ...], str, int | None, int]]:
    """Per item: its headings, its title, its parent's index and its section's index."""
    doc = parse(markdown)
    return [(doc.sections[i.section].headings, i.title, i.parent, i.section) for i in doc.items]


def config_items(yaml_text: str) -> dict[str, dict[str, object]]:
    raw = yaml.safe_load(yaml_text)
    return {
        item["id"]: item
        for section in raw["checklists"][0]["sections"]
        for item in section["items"]
    }


def placeholders_in(yaml_text: str) -> list[str]:
    """The `${NAME...}` the probe specs of an imported config use, in order, once each."""
    return list(dict.fromkeys(n for item in config_items(yaml_text).values() for n in used(item)))


def used(item: dict[str, object]) -> list[str]:
    """The `${NAME...}` in an item's probe spec (its title may hold `$${...}` text)."""
    return PLACEHOLDER.findall(json.dumps({k: v for k, v in item.items() if k != "title"}))


@pytest.mark.parametrize("name", sorted(HEADINGS))
def test_import_check_report_gives_back_every_heading_and_every_item(
    tmp_path: Path, name: str
) -> None:
    source = FIXTURES / f"{name}.md"
    config = tmp_path / f"{name}.yaml"
    target = HttpTarget()  # answers 200 on /health*: those items pass, the rest fail or wait
    target.start()
    try:
        done = run("import", str(source), "-o", str(config))
        assert done.returncode == 0, done.stderr
        health = config_items(config.read_text()).get("health-endpoint-returns-200")
        base = next(iter(used(health)), None) if health else None
        if base is not None:  # probe the real (test) service: fill its placeholder at import
            done = run(
                "import", str(source), "-o", str(config), "--force", "--set", f"{base}={target.url}"
            )
            assert done.returncode == 0, done.stderr
        assert run("validate", "--config", str(config)).returncode == 0
        env = {"READINESS_STATE": f"sqlite:///{tmp_path}/state.db"}
        checked = run("check", "--no-serve", "--config", str(config), "--format", "json", env=env)
    finally:
        target.stop()
    assert checked.returncode in (0, 1), checked.stderr
    passing = {
        i["title"]: i["passing"]
        for s in json.loads(checked.stdout)["checklists"][0]["sections"]
        for i in s["items"]
    }

    report = run("report", "--config", str(config), "--format", "markdown", env=env)
    assert report.returncode == 0, report.stderr
    assert headings_of(report.stdout) == HEADINGS[name]
    source_items = shape(decode(source.read_bytes()))
    report_items = shape(report.stdout)
    assert len(report_items) == len(source_items) == len(passing)
    for (headings, title, parent, _), (r_headings, r_title, r_parent, _) in zip(
        source_items, report_items, strict=True
    ):
        assert (r_headings, r_parent) == (headings, parent), title
        assert r_title == title or r_title.startswith(f"{title} — "), (title, r_title)
    ticks = {i.title: i.checked for i in parse(report.stdout).items}
    for title, ok in passing.items():
        line = next(t for t in ticks if t == title or t.startswith(f"{title} — "))
        assert ticks[line] is ok, title
    if base is not None:
        assert passing["`/health` endpoint returns 200"] is True
    if name == "payments-api":
        assert passing["Product owner approval"] is False

    html = run("report", "--config", str(config), "--format", "html", env=env)
    assert html.returncode == 0 and html.stdout.startswith("<!doctype html>")
    assert html.stdout.count("<li class='item") == len(source_items)
    shown = re.findall(r"<h[1-6][^>]*>([^<]*)</h[1-6]>", html.stdout)
    assert [h for h in shown if h in HEADINGS[name][1:]] == HEADINGS[name][1:]


def test_import_summary_names_counts_kinds_and_each_placeholder_with_its_items(
    tmp_path: Path,
) -> None:
    config = tmp_path / "payments.yaml"
    done = run("import", str(FIXTURES / "payments-api.md"), "-o", str(config))
    assert done.returncode == 0, done.stderr
    items = config_items(config.read_text())
    probed = {ident: item for ident, item in items.items() if "manual" not in item}
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"{config}: {len(items)} items in 10 sections"
        " (2 headings with no items, kept for the report)"
    )
    kinds: dict[str, int] = {}
    for item in probed.values():
        kind = next(k for k in item if isinstance(item[k], dict))
        kinds[kind] = kinds.get(kind, 0) + 1
    assert (
        lines[1]
        == f"  probed: {len(probed)} ("
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        + ")"
    )
    assert lines[2].startswith(f"  manual: {len(items) - len(probed)}, attested with ")
    users: dict[str, list[str]] = {}
    for ident, item in probed.items():
        for name in dict.fromkeys(used(item)):
            users.setdefault(name, []).append(ident)
    assert users, "the fixture has items whose probe needs a target"
    for name, ids in users.items():
        line = next(x for x in lines if x.startswith(f"    {name} ("))
        assert "(not set: its items are unconfigured, never run, until it is; e.g. " in line
        assert "), used by " in line
        for ident in ids[:6]:
            assert ident in line
    assert lines[-1] == f"  next: readiness-exporter check --config {config}"
    # to stdout, the summary still goes to stderr, and the YAML alone to stdout
    piped = run("import", str(FIXTURES / "payments-api.md"))
    assert piped.stderr.startswith("<stdout>: ") and piped.stdout.startswith("# Imported from")
    assert yaml.safe_load(piped.stdout)["checklists"]


def test_set_fills_placeholders_so_the_written_config_validates_with_the_value(
    tmp_path: Path,
) -> None:
    config = tmp_path / "payments.yaml"
    assert run("import", str(FIXTURES / "payments-api.md"), "-o", str(config)).returncode == 0
    names = [n for n in placeholders_in(config.read_text()) if not n.endswith("PORT")]
    assert len(names) >= 2
    # values YAML would misread if written bare: a colon-space, a ' #', quotes
    values = {
        name: "https://api.example.com:8443/v1?q='x'&r=\"y\"#top"
        if name.endswith("URL")
        else "api.example.com"
        if name.endswith("HOST")
        else "/srv/pay ments: 'x' #1"
        for name in names
    }
    args = [a for n, v in values.items() for a in ("--set", f"{n}={v}")]
    done = run("import", str(FIXTURES / "payments-api.md"), "-o", str(config), "--force", *args)
    assert done.returncode == 0, done.stderr
    for name, value in values.items():
        assert f"    {name}={value} (set), used by " in done.stderr
    assert run("validate", "--config", str(config)).returncode == 0
    written = json.dumps(yaml.safe_load(config.read_text()))
    for name, value in values.items():
        assert json.dumps(f"${{{name}:-{value}}}")[1:-1] in written


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("BASE_URL", "write NAME=VALUE"),
        ("=x", "write NAME=VALUE"),
        ("1X=y", "write NAME=VALUE"),
        ("BASE_URL=", "give BASE_URL a value"),
        ("NO_SUCH_PLACEHOLDER=x", "no suggested probe uses ${NO_SUCH_PLACEHOLDER}"),
    ],
)
def test_set_refuses_bad_syntax_and_unknown_names(tmp_path: Path, arg: str, message: str) -> None:
    config = tmp_path / "out.yaml"
    done = run("import", str(FIXTURES / "payments-api.md"), "-o", str(config), "--set", arg)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not config.exists()


def test_set_refuses_a_secret_and_says_to_use_the_environment(tmp_path: Path) -> None:
    piped = run("import", str(FIXTURES / "payments-api.md"))
    name = placeholders_in(piped.stdout)[0]
    done = run("import", str(FIXTURES / "payments-api.md"), "--set", f"{name}=https://u:hunter2@h/")
    assert done.returncode == 2 and done.stdout == ""
    assert "looks like a secret" in done.stderr and "environment" in done.stderr
    assert "hunter2" not in done.stderr


def test_import_names_and_refusals(tmp_path: Path) -> None:
    doc = tmp_path / "My Team's Checklist.md"
    doc.write_text("# Launch\n\n## Ops\n- [x] On-call rotation established\n")
    done = run("import", str(doc))
    assert done.returncode == 0, done.stderr
    assert "  - name: my-team-s-checklist\n    title: Launch\n" in done.stdout
    assert run("import", str(doc), "--name", "Bad Name").returncode == 2
    empty = tmp_path / "empty.md"
    empty.write_text("# Nothing to tick\n\nJust prose.\n")
    refused = run("import", str(empty))
    assert refused.returncode == 2 and "no checklist items found" in refused.stderr
    missing = run("import", str(tmp_path / "absent.md"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    # a placeholder the environment sets to nonsense is reported, not written
    fixture = str(FIXTURES / "payments-api.md")
    assert "BASE_URL" in placeholders_in(run("import", fixture).stdout)
    bad = run("import", fixture, env={"BASE_URL": "nonsense"})
    assert bad.returncode == 2 and "url must be absolute" in bad.stderr and bad.stdout == ""
    # and so is one given with --set, naming the line and the item
    bad = run("import", fixture, "--set", "BASE_URL=nonsense")
    assert bad.returncode == 2 and bad.stdout == ""
    assert re.search(r"^<stdout>:\d+: item [a-z0-9-]+: http\.url: ", bad.stderr, re.M), bad.stderr


def test_check_state_carries_the_documents_ticks_over_as_attestations(tmp_path: Path) -> None:
    doc = tmp_path / "launch.md"
    doc.write_text(
        "# Launch\n\n## Ops\n- [x] On-call rotation established\n- [ ] Runbook created\n"
        "- [x] Check disk space\n\n## Daily\n- [X] Review error logs\n"
    )
    config = tmp_path / "launch.yaml"
    env = {"READINESS_STATE": f"sqlite:///{tmp_path}/state.db"}
    done = run("import", str(doc), "-o", str(config), "--check-state", env=env)
    assert done.returncode == 0, done.stderr
    assert "2 ticked manual items attested by import; 1 ticked items have probes" in done.stderr

    report = run("report", "--config", str(config), env=env).stdout
    lines = {line.split(" — ")[0]: line for line in report.splitlines() if "- [" in line}
    assert "attested by import" in lines["- [x] On-call rotation established"]
    assert "- [ ] Runbook created" in lines
    assert "- [x] Review error logs" in lines  # recurring: attested now, due in a day
    assert "due " in lines["- [x] Review error logs"]
    assert "- [ ] Check disk space" in lines  # probed: not run yet, whatever the tick said
    history = run(
        "attest", "--config", str(config), "launch", "runbook-created", "--by", "bob", env=env
    )
    assert history.returncode == 0, history.stderr
