"""The whole loop with the real programs: exporter -> Prometheus (the shipped config and rules,
`for:` shortened) -> Alertmanager (the shipped routing) -> a webhook this test runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.exporter import Exporter, wait_for
from tests.support.monitoring import (
    RULES,
    Process,
    WebhookReceiver,
    alertmanager,
    dashboard_queries,
    prometheus,
    promql,
)
from tests.support.servers import HttpTarget, free_port

pytestmark = pytest.mark.slow

RUNBOOK_URL = "https://github.com/readiness-exporter/readiness-exporter/blob/main/docs/runbook.md"
FOR = "2s"
ALERT_TIMEOUT = 30.0


@dataclass
class Stack:
    workdir: Path
    target: HttpTarget
    exporter: Exporter
    prometheus: Process
    alertmanager: Process
    webhook: WebhookReceiver

    def diagnostics(self) -> str:
        return (
            f"\nwebhook received:\n{self.webhook.summary() or '(nothing)'}"
            f"\nprometheus log:\n{self.prometheus.tail(1500)}"
            f"\nalertmanager log:\n{self.alertmanager.tail(1500)}"
            f"\nexporter log:\n{self.exporter.output()[-1500:]}"
        )

    def wait_alert(
        self,
        path: str,
        status: str,
        where: Callable[[dict[str, Any]], bool] = lambda alert: True,
        **labels: str,
    ) -> dict[str, Any]:
        """The latest alert with `status` and `labels` (and `where`) POSTed to `path`."""

        def arrived() -> dict[str, Any] | None:
            found = [a for a in self.webhook.alerts(path, status, **labels) if where(a)]
            return found[-1] if found else None

        try:
            return wait_for(arrived, ALERT_TIMEOUT, f"a {status} alert {labels} at {path}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}{self.diagnostics()}") from None

    def item_labels(
        self, alertname: str, severity: str, section: str, item: str, title: str
    ) -> dict[str, str]:
        """The exact labels of an item alert from this stack's exporter."""
        return {
            "alertname": alertname,
            "severity": severity,
            "instance": f"127.0.0.1:{self.exporter.port}",
            "job": "readiness-exporter",
            "checklist": "e2e",
            "section": section,
            "item": item,
            "title": title,
        }


def write_config(workdir: Path, target: HttpTarget) -> Path:
    (workdir / "backup.dump").write_bytes(b"backup")
    (workdir / "report.txt").write_text("report")
    config = workdir / "readiness.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{workdir}/state.db"
  default_interval: 1s
  default_timeout: 2s
  api_tokens:
    - {{name: oncall, token_env: E2E_ONCALL_TOKEN, roles: [attest]}}
    - {{name: lead, token_env: E2E_LEAD_TOKEN, roles: [admin]}}
checklists:
  - name: e2e
    title: End to end
    go_live: 2020-01-01T00:00:00Z
    sections:
      - name: health
        title: Health
        items:
          - id: health-endpoint
            title: "/health returns 200"
            severity: critical
            http: {{url: "{target.url}/health"}}
            expect: ["status == 200"]
      - name: operations
        title: Operations
        items:
          - id: backup-verified
            title: Backup verified
            every: 2s
            file: {{path: "{workdir}/backup.dump"}}
          - id: report-fresh
            title: Report is fresh
            severity: info
            every: 2s
            file: {{path: "{workdir}/report.txt"}}
            expect: ["age < 4s"]
          - id: handover-done
            title: On-call handover done
            manual: {{}}
            every: 3s
          - id: k8s-probes
            title: Kubernetes probes (if using Kubernetes)
            severity: info
            file: {{path: "{workdir}/readiness.yaml"}}
  - name: staging
    title: Not live yet
    go_live: 2099-01-01T00:00:00Z
    sections:
      - name: health
        items:
          - id: api-port-open
            title: API port open
            severity: critical
            tcp: {{host: 127.0.0.1, port: {free_port()}}}
""")
    return config


TOKENS = {
    "E2E_ONCALL_TOKEN": "e2e-oncall-0123456789abcdef",
    "E2E_LEAD_TOKEN": "e2e-lead-0123456789abcdef01",
}


def waive(exporter: Exporter) -> None:
    """A waiver on k8s-probes, asked for by on-call and approved by the lead, that ends
    within the warning (7 days): the waiver panels and the alert have something to show."""
    asked = httpx.post(
        f"{exporter.url}/api/v1/waivers",
        json={"checklist": "e2e", "item": "k8s-probes", "reason": "VMs only", "by": "alice",
              "expires": "3d"},
        headers={"Authorization": f"Bearer {TOKENS['E2E_ONCALL_TOKEN']}"},
        timeout=15,
    )  # fmt: skip
    assert asked.status_code == 201, asked.text
    approved = httpx.post(
        f"{exporter.url}/api/v1/waivers/{asked.json()['id']}/approve",
        headers={"Authorization": f"Bearer {TOKENS['E2E_LEAD_TOKEN']}"},
        timeout=15,
    )
    assert approved.status_code == 200, approved.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("monitoring")
    started: list[Any] = []
    try:
        webhook = WebhookReceiver()
        started.append(webhook)
        target = HttpTarget()
        target.start()
        started.append(target)
        exporter = Exporter(write_config(workdir, target), env=TOKENS)
        exporter.start()
        started.append(exporter)
        waive(exporter)
        am = alertmanager(workdir, webhook.url)
        am.start()
        started.append(am)
        prom = prometheus(workdir, exporter.port, am.port, FOR)
        prom.start()
        started.append(prom)
        stack = Stack(workdir, target, exporter, prom, am, webhook)
        wait_for(
            lambda: prom.query('up{job="readiness-exporter"} == 1'),
            15,
            f"Prometheus to scrape the exporter{stack.diagnostics()}",
        )
        yield stack
    finally:
        for component in reversed(started):
            if isinstance(component, WebhookReceiver):
                component.close()
            elif isinstance(component, Exporter):
                if component.proc is not None:
                    component.stop()
            else:
                component.stop()


def test_shipped_configs_load_into_the_real_programs(stack: Stack) -> None:
    groups = stack.prometheus.api("/api/v1/rules")["data"]["groups"]
    assert {g["name"] for g in groups} == {
        "readiness.rules",
        "readiness.items",
        "readiness.exporter",
    }
    unhealthy = [r["name"] for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not unhealthy, f"rules failing to evaluate: {unhealthy}"
    alertmanagers = stack.prometheus.api("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in alertmanagers] == [f"{stack.alertmanager.url}/api/v2/alerts"]
    receivers = stack.alertmanager.api("/api/v2/receivers")
    assert {r["name"] for r in receivers} == {"pager", "chat", "blackhole"}


def test_a_regression_pages_and_its_repair_resolves(stack: Stack) -> None:
    labels = {"alertname": "ReadinessItemRegressed", "item": "health-endpoint"}
    stack.target.stop()
    try:
        firing = stack.wait_alert("/pager", "firing", **labels)
    finally:
        stack.target.start()
    instance = f"127.0.0.1:{stack.exporter.port}"
    assert firing["labels"] == stack.item_labels(
        "ReadinessItemRegressed", "critical", "health", "health-endpoint", "/health returns 200"
    )
    assert firing["annotations"] == {
        "summary": "Readiness item e2e/health-endpoint is failing after go-live.",
        "description": (
            '"/health returns 200" (item health-endpoint, section health, checklist e2e) no '
            "longer passes on the live checklist; reason: connect. The failing condition and its "
            f"evidence are in /status on {instance}."
        ),
        "runbook_url": f"{RUNBOOK_URL}#readinessitemregressed",
    }
    resolved = stack.wait_alert("/pager", "resolved", **labels)
    assert resolved["labels"] == firing["labels"]
    assert not stack.webhook.alerts("/chat", "firing", **labels), "a critical item went to chat"


def test_nothing_alerts_on_a_checklist_before_go_live(stack: Stack) -> None:
    # staging's critical item fails from the start: wait until it has for 3 times `for:`.
    window = "6s"
    wait_for(
        lambda: stack.prometheus.query(
            f'max_over_time(readiness_item_passing{{checklist="staging"}}[{window}]) == 0 '
            f'and count_over_time(readiness_item_passing{{checklist="staging"}}[{window}]) >= 5'
        ),
        ALERT_TIMEOUT,
        f"staging's item to fail for {window}{stack.diagnostics()}",
    )
    assert stack.prometheus.query('readiness_checklist_live{checklist="staging"} == 0')
    assert not stack.prometheus.query('ALERTS{checklist="staging"}')
    assert not [
        a
        for path in ("/pager", "/chat")
        for a in stack.webhook.alerts(path, "firing", checklist="staging")
    ], stack.webhook.summary()


def test_a_lapsed_recurring_item_notifies_without_paging(stack: Stack) -> None:
    labels = {"alertname": "ReadinessItemLapsed", "item": "backup-verified"}
    (stack.workdir / "backup.dump").unlink()
    lapsed = stack.wait_alert("/chat", "firing", **labels)
    assert lapsed["labels"] == stack.item_labels(
        "ReadinessItemLapsed", "warning", "operations", "backup-verified", "Backup verified"
    )
    assert lapsed["annotations"]["summary"] == "Recurring item e2e/backup-verified has lapsed."
    assert lapsed["annotations"]["runbook_url"] == f"{RUNBOOK_URL}#readinessitemlapsed"
    description = lapsed["annotations"]["description"]
    due = stack.exporter.value("readiness_item_due_timestamp_seconds", item="backup-verified")
    assert due is not None
    expected_due = datetime.fromtimestamp(round(due), UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
    assert description == (
        f'"Backup verified" (item backup-verified, section operations, checklist e2e) was due at '
        f"{expected_due} and has had no success (or attestation) since, grace included."
    )
    assert not stack.webhook.alerts("/pager", "firing", **labels), "a warning item paged"

    (stack.workdir / "backup.dump").write_bytes(b"backup")
    stack.wait_alert("/chat", "resolved", **labels)


def test_info_items_notify_nobody(stack: Stack) -> None:
    wait_for_failing_and_lapsed(stack)
    time.sleep(2)  # a few group intervals for Alertmanager to route it
    assert not [
        a
        for path in ("/pager", "/chat")
        for a in stack.webhook.alerts(path, "firing")
        if a["labels"].get("item") == "report-fresh"
    ], f"an info item notified someone:\n{stack.webhook.summary()}"


NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z0-9_]+)+|\breadiness_[a-z0-9_]+")


def wait_for_failing_and_lapsed(stack: Stack) -> None:
    # report-fresh (severity info) passes for 4s after the start, then fails and lapses: it
    # gives every panel something to show, the failing/lapsed table included.
    wait_for(
        lambda: stack.prometheus.query(
            'ALERTS{alertname="ReadinessItemLapsed", item="report-fresh", alertstate="firing"}'
        ),
        ALERT_TIMEOUT,
        f"report-fresh to lapse{stack.diagnostics()}",
    )


def test_a_waiver_ending_soon_warns_in_chat(stack: Stack) -> None:
    labels = {"alertname": "ReadinessWaiverExpiringSoon", "item": "k8s-probes"}
    firing = stack.wait_alert("/chat", "firing", **labels)
    assert firing["labels"]["severity"] == "warning"
    assert firing["annotations"]["summary"] == "The waiver of e2e/k8s-probes expires soon."
    assert not stack.webhook.alerts("/pager", "firing", **labels), "a waiver's end paged"
    # The dashboards show it: one row, with its end, in the overview's table and stats, and
    # the end on the item's page (an item without a waiver reads 0 there, "not waived").
    ends = stack.exporter.value("readiness_item_waiver_expiry_timestamp_seconds", item="k8s-probes")
    assert ends is not None
    for item, shown in (("k8s-probes", ends * 1000), ("report-fresh", 0.0)):
        (expr,) = [e for uid, title, e in dashboard_queries() if title == "Waived until"]
        (series,) = stack.prometheus.query(promql(expr, {"checklist": "e2e", "item": item})[0])
        assert float(series["value"][1]) == pytest.approx(shown), item
    values = {"checklist": "e2e"}
    for title, count in (("Waived items", 1.0), ("Waivers ending soon", 1.0)):
        (expr,) = [e for _, t, e in dashboard_queries() if t == title]
        found = stack.prometheus.query(promql(expr, values)[0])
        assert [float(r["value"][1]) for r in found] == [count], (title, found)
    table = [e for _, t, e in dashboard_queries() if t == "Waived items and when each waiver ends"]
    rows = [stack.prometheus.query(promql(e, values)[0]) for e in table]
    assert [[r["metric"]["item"] for r in found] for found in rows] == [["k8s-probes"]] * 3
    assert rows[0][0]["metric"]["title"] == "Kubernetes probes (if using Kubernetes)"


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    wait_for_failing_and_lapsed(stack)
    values = {"checklist": "e2e", "item": "report-fresh", "__rate_interval": "1m"}
    empty = []
    for uid, panel, expr in dashboard_queries():
        query, label = promql(expr, values)
        result = stack.prometheus.query(query)  # fails on a query Prometheus refuses
        if label:
            result = [r for r in result if label in r["metric"]]
        if not result:
            empty.append(f"{uid} / {panel}: {query}")
    assert not empty, "queries without data:\n" + "\n".join(empty) + stack.diagnostics()


def test_every_metric_in_rules_and_dashboards_is_exported_or_recorded(stack: Stack) -> None:
    wait_for_failing_and_lapsed(stack)
    text = stack.exporter.get("/metrics").text
    exported = set(re.findall(r"(?m)^# TYPE (\S+)", text)) | set(
        re.findall(r"(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text)
    )
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    used = {
        (where, name)
        for where, source in [
            *((f"rule {r.get('alert') or r['record']}", r["expr"]) for r in rules),
            *(
                (f"rule {r['alert']} annotations", json.dumps(r["annotations"]))
                for r in rules
                if "alert" in r
            ),
            *((f"dashboard {uid} / {panel}", expr) for uid, panel, expr in dashboard_queries()),
        ]
        for name in NAME.findall(source)
    }
    assert {name for _, name in used if name.startswith("readiness_")}, "found no metric names"
    missing = sorted(
        f"{where}: {name}"
        for where, name in used
        if name not in (recorded if ":" in name else exported)
    )
    assert not missing, "names neither exported nor recorded:\n" + "\n".join(missing)


def test_a_manual_item_attested_once_lapses_and_notifies(stack: Stack) -> None:
    labels = {"alertname": "ReadinessItemLapsed", "item": "handover-done"}
    attest = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "attest",
            "--config",
            str(stack.exporter.config),
            "e2e",
            "handover-done",
            "--by",
            "alice",
            "--note",
            "handover call done",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=stack.exporter.env,
    )
    assert attest.returncode == 0, attest.stdout + attest.stderr
    attested_at = time.time()

    def due_after_attestation(alert: dict[str, Any]) -> bool:
        # The item lapsed once already, unattested since the start: the lapse that counts is
        # the one due `every` (3s; printed in whole seconds) after the attestation.
        match = re.search(r"was due at (.+?) and", alert["annotations"]["description"])
        assert match, alert["annotations"]["description"]
        due = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S +0000 UTC")
        return due.replace(tzinfo=UTC).timestamp() >= attested_at + 2

    lapsed = stack.wait_alert("/chat", "firing", due_after_attestation, **labels)
    assert lapsed["labels"] == stack.item_labels(
        "ReadinessItemLapsed", "warning", "operations", "handover-done", "On-call handover done"
    )
    assert lapsed["annotations"]["summary"] == "Recurring item e2e/handover-done has lapsed."
