"""From a Markdown checklist to a live one, as users run it: import, validate, check, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.mdchecklist import decode, parse
from exporter.recognise import PLACEHOLDERS
from tests.support.servers import HttpTarget

REPO = Path(__file__).parents[2]
CHECKLISTS = REPO / ".." / "shared" / "checklists"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PLACEHOLDERS}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def shape(markdown: str) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], str, int | None]]]:
    """A document's title and, per item, its headings, its title and its parent's index."""
    doc = parse(markdown)
    return doc.title, [(doc.sections[i.section].headings, i.title, i.parent) for i in doc.items]


@pytest.mark.parametrize("name", ["stock-data-collector", "options-trading-engine"])
def test_import_check_report_gives_back_the_document_with_live_ticks(
    tmp_path: Path, name: str
) -> None:
    config = tmp_path / f"{name}.yaml"
    done = run("import", str(CHECKLISTS / f"{name}.md"), "-o", str(config))
    assert done.returncode == 0, done.stderr
    assert f"{config}: " in done.stderr and "probed" in done.stderr
    assert run("validate", "--config", str(config)).returncode == 0

    target = HttpTarget()  # answers 200 on /health*: those items pass, the rest fail or wait
    target.start()
    try:
        env = {"READINESS_STATE": f"sqlite:///{tmp_path}/state.db", "BASE_URL": target.url}
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
    source_title, source_items = shape(decode((CHECKLISTS / f"{name}.md").read_bytes()))
    report_title, report_items = shape(report.stdout)
    assert report_title == source_title
    assert len(report_items) == len(source_items)
    for (headings, title, parent), (r_headings, r_title, r_parent) in zip(
        source_items, report_items, strict=True
    ):
        assert (r_headings, r_parent) == (headings, parent), title
        assert r_title == title or r_title.startswith(f"{title} — "), (title, r_title)
    ticks = {i.title: i.checked for i in parse(report.stdout).items}
    for title, ok in passing.items():
        line = next(t for t in ticks if t == title or t.startswith(f"{title} — "))
        assert ticks[line] is ok, title
    if name == "stock-data-collector":
        assert passing["`/health` endpoint returns 200"] is True
        assert passing["Firewall rules configured"] is False

    html = run("report", "--config", str(config), "--format", "html", env=env)
    assert html.returncode == 0 and html.stdout.startswith("<!doctype html>")
    assert html.stdout.count("<li class='item") == len(source_items)


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
    bad = run("import", str(CHECKLISTS / "stock-data-collector.md"), env={"BASE_URL": "nonsense"})
    assert bad.returncode == 2 and "url must be absolute" in bad.stderr


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
