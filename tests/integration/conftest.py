"""A monitoring stack shared by the tests that query Prometheus: Debian's prometheus scraping a
readiness exporter subprocess (job `readiness`), an API-shaped target (job `app`) and itself
(job `prometheus`), with one alerting rule loaded. Started once per session: Prometheus only
picks up new targets every 5s."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.exporter import Exporter, wait_for
from tests.support.services import AppMetrics, PrometheusServer, pg_database, pg_url

READINESS_CONFIG = """
exporter:
  state: "sqlite:///{dir}/state.db"
  default_interval: 1s
checklists:
  - name: app
    sections:
      - name: files
        items:
          - id: config-present
            title: Config file present
            file: {{path: "{dir}/readiness.yaml"}}
          - id: missing-file
            title: A file that is not there
            severity: critical
            file: {{path: "{dir}/absent"}}
"""


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh, empty database in the machine's PostgreSQL, dropped with its sessions after:
    its DSN."""
    with pg_database(prefix="readiness_test") as name:
        yield pg_url(name)


RULES = """
groups:
  - name: app
    rules:
      - alert: AppErrorRateHigh
        expr: >-
          sum(rate(http_requests_total{code=~"5.."}[5m]))
          / sum(rate(http_requests_total[5m])) > 0.05
        for: 5m
        labels: {severity: page}
        annotations: {summary: More than 5% of API requests fail}
"""


@dataclass(frozen=True)
class Monitoring:
    prometheus: PrometheusServer
    exporter: Exporter

    @property
    def url(self) -> str:
        return self.prometheus.url


@pytest.fixture(scope="session")
def monitoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    workdir = tmp_path_factory.mktemp("monitoring")
    config = workdir / "readiness.yaml"
    config.write_text(READINESS_CONFIG.format(dir=workdir))
    exporter = Exporter(config)
    app = AppMetrics()
    app.start()
    exporter.start()
    prometheus = PrometheusServer(
        workdir,
        {"readiness": f"127.0.0.1:{exporter.port}", "app": f"127.0.0.1:{app.port}"},
        RULES,
    )
    try:
        prometheus.start()
        for promql in (
            'readiness_item_passing{item="config-present"}',
            'rate(http_requests_total{job="app"}[1m])',
            "prometheus_rule_group_rules",
        ):
            wait_for(
                lambda promql=promql: prometheus.query(promql),  # type: ignore[misc]
                30,
                f"prometheus to answer {promql} (log: {prometheus.log})",
            )
        yield Monitoring(prometheus, exporter)
    finally:
        prometheus.stop()
        exporter.stop()
        app.stop()
