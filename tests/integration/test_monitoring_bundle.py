"""The shipped monitoring bundle, checked by the real tools: promtool (rules, rule unit tests,
Prometheus config), amtool (Alertmanager config and routing), and the shape of the dashboards."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.monitoring import (
    ALERTMANAGER_CONFIG,
    DASHBOARDS,
    PROMETHEUS_CONFIG,
    ROOT,
    RULES,
    RUNBOOK,
    dashboard_queries,
    program,
    promql,
)

RULE_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.yml"))
RUNBOOK_URL = "https://github.com/readiness-exporter/readiness-exporter/blob/main/docs/runbook.md"
# Alerts on an item keep the item's own severity label; the others set theirs.
ITEM_SEVERITY_ALERTS = {"ReadinessItemRegressed", "ReadinessItemLapsed"}
ITEM_ALERTS = ITEM_SEVERITY_ALERTS | {"ReadinessItemLapsingSoon"}


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings, and its explicit <a id> anchors."""
    text = RUNBOOK.read_text()
    headings = re.findall(r"(?m)^#+ (.+)$", text)
    slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
    return slugs | set(re.findall(r'<a id="([^"]+)"></a>', text))


def test_rules_pass_promtool_check() -> None:
    result = run(program("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool unit tests in alerts/tests/"
    result = run(program("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_the_rule_unit_tests(tmp_path: Path) -> None:
    # The unit tests can fail: the same file, with one expected label changed, must not pass.
    broken = (ROOT / "alerts" / "tests" / "exporter.test.yml").read_text()
    broken = broken.replace("severity: critical", "severity: warning", 1)
    path = tmp_path / "broken.test.yml"
    path.write_text(broken.replace("../readiness.rules.yml", str(RULES)))
    result = run(program("promtool"), "test", "rules", str(path))
    assert result.returncode != 0
    assert "ReadinessExporterDown" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check["exp_alerts"] else silent).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fired == set(), "alerts no unit test sees firing"
    assert names - silent == set(), "alerts no unit test sees not firing (before for:, resolved)"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_every_alert_has_severity_summary_description_and_runbook(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    severity = alert.get("labels", {}).get("severity")
    if name in ITEM_SEVERITY_ALERTS:
        assert severity is None, f"{name} must keep the item's own severity label"
        assert "readiness_item_passing" in alert["expr"] or "readiness_item_lapsed" in alert["expr"]
    else:
        assert severity in {"critical", "warning", "info"}
    assert alert.get("for"), f"{name} has no `for:`"
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    url, _, anchor = annotations["runbook_url"].partition("#")
    assert url == RUNBOOK_URL
    assert anchor == name.lower()
    assert anchor in runbook_anchors(), f"docs/runbook.md has no section {name}"
    if name in ITEM_ALERTS:
        for label in ("checklist", "section", "item", "title"):
            assert f"$labels.{label}" in annotations["description"], f"{name}: {label}"
        assert "readiness_checklist_live" in alert["expr"], f"{name} must wait for go-live"


def test_prometheus_config_passes_promtool_with_its_rule_file() -> None:
    result = run(program("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_alertmanager_config_passes_amtool() -> None:
    result = run(program("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "pager"), ("warning", "chat"), ("info", "blackhole")]
)
def test_alertmanager_routes_by_severity(severity: str, receiver: str) -> None:
    result = run(
        program("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        "alertname=ReadinessItemRegressed",
        f"severity={severity}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_dashboards_have_stable_uids_a_current_schema_and_their_variables() -> None:
    found = dashboards()
    assert set(found) == {"readiness-overview.json", "readiness-item.json"}
    overview = "\n".join(
        t["expr"] for p in found["readiness-overview.json"]["panels"] for t in p.get("targets", [])
    )
    for metric in ("readiness_item_waived", "readiness_item_waiver_expiry_timestamp_seconds"):
        assert metric in overview, f"the overview shows no {metric}"
    assert {d["uid"] for d in found.values()} == {"readiness-overview", "readiness-item"}
    for name, dashboard in found.items():
        assert dashboard["schemaVersion"] >= 41, name
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert "checklist" in variables
        assert any(link["url"].startswith(RUNBOOK_URL) for link in dashboard["links"]), name
    item_variables = {v["name"] for v in found["readiness-item.json"]["templating"]["list"]}
    assert "item" in item_variables


def test_every_panel_reads_the_datasource_variable_and_explains_itself() -> None:
    for name, dashboard in dashboards().items():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            where = f"{name}: panel {panel['title']!r}"
            assert panel["description"], where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", where
                assert target["expr"].strip(), where


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    provisioning = ROOT / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "readiness.yaml").read_text())
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((provisioning / "dashboards" / "readiness.yaml").read_text())
    assert [p["type"] for p in providers["providers"]] == ["file"]
    assert providers["providers"][0]["options"]["path"]


def check_as_rules(
    queries: list[tuple[str, str, str]], where: Path
) -> subprocess.CompletedProcess[str]:
    """promtool's parser on every query, written as a recording rule each (the test of the
    stack, test_monitoring_e2e, runs them against Prometheus and wants data)."""
    values = {"checklist": "app", "item": "api", "__rate_interval": "1m"}
    rules = [
        {"record": f"dashboard_query_{n}", "expr": promql(expr, values)[0]}
        for n, (_, _, expr) in enumerate(queries)
    ]
    path = where / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    return run(program("promtool"), "check", "rules", str(path))


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    result = check_as_rules(queries, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries)} rules found" in result.stdout
    # And the check can fail: one query with an unbalanced parenthesis does not pass.
    uid, title, expr = next(q for q in queries if "readiness_item_waived" in q[2])
    refused = check_as_rules([*queries, (uid, title, f"({expr}")], tmp_path)
    assert refused.returncode != 0 and "dashboard_query_" in refused.stdout + refused.stderr
