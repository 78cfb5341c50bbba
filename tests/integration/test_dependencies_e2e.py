"""Dependencies end to end with the real programs: the machine's PostgreSQL behind a proxy this
test cuts, five items depending on it, the exporter, Prometheus on the shipped rules (`for:`
shortened) and Alertmanager on the shipped routing. The outage pages once, for the root, with
the count of blocked items; its repair resolves; a dependent still failing then pages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.exporter import Exporter, wait_for
from tests.support.monitoring import WebhookReceiver, alertmanager, prometheus
from tests.support.services import PG_HOST, PG_PORT, TcpProxy, pg_database, psql

pytestmark = pytest.mark.slow

FOR = "3s"
"""Longer than a probe interval (1s): a dependent that notices the outage a moment before its
root is blocked before its alert could fire."""
TIMEOUT = 40.0
DEPENDENTS = ("orders-table", "quotes-query", "symbols-query", "settings-read", "port-open")


def write_config(workdir: Path, dsn: str, port: int) -> Path:
    config = workdir / "deps.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{workdir}/state.db"
  default_interval: 1s
  default_timeout: 2s
checklists:
  - name: deps
    go_live: 2020-01-01T00:00:00Z
    sections:
      - name: db
        items:
          - id: postgres-up
            title: PostgreSQL running
            severity: critical
            postgres: {{dsn: "{dsn}", connect_timeout: 1s}}
          - id: orders-table
            title: Orders table created
            severity: critical
            depends_on: [postgres-up]
            postgres: {{dsn: "{dsn}", tables: [orders], connect_timeout: 1s}}
            expect: ["connected == true", "missing_tables == 0"]
          - id: quotes-query
            title: Quotes answer
            severity: critical
            depends_on: [postgres-up]
            postgres: {{dsn: "{dsn}", query: "SELECT 1", connect_timeout: 1s}}
            expect: ["value == 1"]
          - id: symbols-query
            title: Symbols answer
            severity: critical
            depends_on: [postgres-up]
            postgres: {{dsn: "{dsn}", query: "SELECT 2", connect_timeout: 1s}}
            expect: ["value == 2"]
          - id: settings-read
            title: Settings readable
            severity: critical
            depends_on: [deps/postgres-up]
            postgres: {{dsn: "{dsn}", settings: [max_connections], connect_timeout: 1s}}
            expect: ["setting.max_connections > 0"]
          - id: port-open
            title: Database port open
            severity: critical
            depends_on: [postgres-up]
            tcp: {{host: 127.0.0.1, port: {port}}}
""")
    return config


class Stack:
    def __init__(self, workdir: Path, proxy: TcpProxy, database: str) -> None:
        self.proxy, self.database = proxy, database
        self.webhook = WebhookReceiver()
        dsn = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}"
        self.exporter = Exporter(write_config(workdir, dsn, proxy.port))
        self.alertmanager = alertmanager(workdir, self.webhook.url)
        self.exporter.start()
        self.alertmanager.start()
        self.prometheus = prometheus(workdir, self.exporter.port, self.alertmanager.port, FOR)
        self.prometheus.start()

    def stop(self) -> None:
        self.prometheus.stop()
        self.alertmanager.stop()
        if self.exporter.proc is not None:
            self.exporter.stop()
        self.webhook.close()

    def paged(self, status: str) -> set[str]:
        """The items of the ReadinessItemRegressed alerts POSTed to the pager with `status`."""
        alerts = self.webhook.alerts("/pager", status, alertname="ReadinessItemRegressed")
        return {a["labels"]["item"] for a in alerts}

    def alert(self, status: str, item: str) -> dict[str, Any]:
        def arrived() -> dict[str, Any] | None:
            found = self.webhook.alerts(
                "/pager", status, alertname="ReadinessItemRegressed", item=item
            )
            return found[-1] if found else None

        return wait_for(arrived, TIMEOUT, f"a {status} page for {item}{self.diagnostics()}")

    def diagnostics(self) -> str:
        return (
            f"\nwebhook received:\n{self.webhook.summary() or '(nothing)'}"
            f"\nprometheus log:\n{self.prometheus.tail(1000)}"
            f"\nexporter log:\n{self.exporter.output()[-1500:]}"
        )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    proxy.start()
    with pg_database("CREATE TABLE orders (id int)", prefix="i16deps") as database:
        stack = Stack(tmp_path, proxy, database)
        try:
            yield stack
        finally:
            stack.stop()
            proxy.stop()


def test_a_database_outage_pages_once_and_a_still_failing_dependent_pages_after(
    stack: Stack,
) -> None:
    exporter = stack.exporter
    wait_for(
        lambda: stack.prometheus.query('min(readiness_item_passing{checklist="deps"}) == 1'),
        TIMEOUT,
        f"every item to pass in Prometheus{stack.diagnostics()}",
    )

    stack.proxy.stop()  # PostgreSQL goes away for the exporter
    firing = stack.alert("firing", "postgres-up")
    assert firing["annotations"]["description"].endswith(
        "5 dependent item(s) are blocked behind it and not paged on their own."
    ), firing["annotations"]["description"]
    # What the exporter says meanwhile.
    assert exporter.get("/health").json()["blocked"] == 5
    for item in DEPENDENTS:
        assert exporter.value("readiness_item_blocked", item=item) == 1, item
        assert exporter.value("readiness_item_passing", item=item) == 0, item
    assert exporter.value("readiness_item_blocking", item="postgres-up") == 5
    items = {
        i["id"]: i
        for s in exporter.get("/status").json()["checklists"][0]["sections"]
        for i in s["items"]
    }
    assert items["quotes-query"]["blocked_by"] == ["deps/postgres-up"]
    # Three times `for:` later, still the one page.
    time.sleep(9)
    assert stack.paged("firing") == {"postgres-up"}, stack.webhook.summary()

    # Repaired, except that the orders table went while the database was out of reach.
    psql("DROP TABLE orders", stack.database)
    stack.proxy.start()
    resolved = stack.alert("resolved", "postgres-up")
    assert resolved["labels"] == firing["labels"]
    own = stack.alert("firing", "orders-table")
    assert "reason: condition" in own["annotations"]["description"]
    assert "blocked behind it" not in own["annotations"]["description"]
    assert exporter.value("readiness_item_blocked", item="orders-table") == 0
    assert stack.paged("firing") == {"postgres-up", "orders-table"}, stack.webhook.summary()

    # Nothing orphaned: what Alertmanager holds active is the one real problem.
    def active() -> list[str] | None:
        alerts = stack.alertmanager.api("/api/v2/alerts", active="true")
        names = sorted(
            a["labels"].get("item", "")
            for a in alerts
            if a["labels"]["alertname"] == "ReadinessItemRegressed"
        )
        return names if names == ["orders-table"] else None

    wait_for(active, TIMEOUT, f"Alertmanager to hold only orders-table{stack.diagnostics()}")
