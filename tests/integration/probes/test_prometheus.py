"""The `prometheus` probe against Debian's prometheus, scraping a real exporter subprocess."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.clock import SystemClock
from exporter.config import Item
from exporter.probes import prometheus
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason
from exporter.results import Result
from exporter.runner import Runner
from tests.integration.conftest import Monitoring
from tests.support.servers import QuietHandler

pytestmark = pytest.mark.slow


@pytest.fixture
def prometheus_url(monitoring: Monitoring) -> str:
    return monitoring.url


async def query(url: str, promql: str, ctx: ProbeContext) -> dict[str, Any]:
    return await prometheus.probe(prometheus.Spec(url=url, query=promql), ctx)


async def test_up_of_a_scraped_job(prometheus_url: str, ctx: ProbeContext) -> None:
    facts = await query(prometheus_url, 'up{job="readiness"}', ctx)

    assert facts["result_type"] == "vector"
    assert facts["series"] == 1
    assert facts["value"] == 1.0
    assert isinstance(facts["duration"], float)


async def run_item(url: str, promql: str) -> Result:
    """The query as a config item runs it: through the runner, judged by the default expect."""
    item = Item.model_validate(
        {"id": "scraped", "title": "Scraped", "prometheus": {"url": url, "query": promql}}
    )
    runner = Runner(4, clock=SystemClock())
    try:
        return await runner.run(item, timeout=5)
    finally:
        await runner.resources.aclose()


async def test_a_passing_query_item(prometheus_url: str) -> None:
    result = await run_item(prometheus_url, 'up{job="readiness"} == 1')

    assert result.passing, result
    assert result.reason is Reason.OK


async def test_a_missing_series_fails_its_item_saying_so(prometheus_url: str) -> None:
    result = await run_item(prometheus_url, 'up{job="no-such-job"}')

    assert not result.passing
    assert result.reason is Reason.CONDITION
    assert result.failed == ("series > 0 (got 0)",)
    assert result.facts["value"] is None


async def test_the_readiness_gauges_themselves(prometheus_url: str, ctx: ProbeContext) -> None:
    ready = await query(prometheus_url, 'readiness_checklist_ready{checklist="app"}', ctx)
    passing = await query(prometheus_url, "readiness_item_passing", ctx)
    score = await query(prometheus_url, 'readiness_checklist_score_ratio{checklist="app"}', ctx)

    assert ready["value"] == 0.0  # the critical missing-file item fails
    assert passing["series"] == 2
    assert passing["value"] is None  # two series: no single value
    assert (passing["min"], passing["max"]) == (0.0, 1.0)
    assert score["value"] == 0.5


async def test_service_level_queries(prometheus_url: str, ctx: ProbeContext) -> None:
    job = 'job="app"'
    error_rate = await query(
        prometheus_url,
        f'sum(rate(http_requests_total{{{job},code=~"5.."}}[1m]))'
        f" / sum(rate(http_requests_total{{{job}}}[1m]))",
        ctx,
    )
    p99 = await query(
        prometheus_url,
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{job}}}[1m])))",
        ctx,
    )
    rules = await query(prometheus_url, "sum(prometheus_rule_group_rules)", ctx)

    assert error_rate["value"] == pytest.approx(1 / 96, rel=0.05)
    assert p99["value"] == pytest.approx(0.00495, rel=0.05)
    assert rules["value"] == 1.0


async def test_a_scalar_and_a_no_traffic_ratio(prometheus_url: str, ctx: ProbeContext) -> None:
    scalar = await query(prometheus_url, 'scalar(count(up{job="readiness"}))', ctx)
    nan = await query(prometheus_url, "vector(0) / vector(0)", ctx)

    assert (scalar["result_type"], scalar["value"]) == ("scalar", 1.0)
    assert (nan["series"], nan["value"]) == (1, None)


async def test_a_bad_query_is_an_error_naming_the_problem(
    prometheus_url: str, ctx: ProbeContext
) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await query(prometheus_url, "rate(up[5m]", ctx)

    assert failure.value.reason is Reason.ERROR
    assert "bad_data" in failure.value.message
    assert "parse error" in failure.value.message


async def test_a_range_vector_is_an_error_saying_what_to_do(
    prometheus_url: str, ctx: ProbeContext
) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await query(prometheus_url, "up[1m]", ctx)

    assert failure.value.reason is Reason.ERROR
    assert "matrix" in failure.value.message
    assert "rate(" in failure.value.message


async def test_not_prometheus_is_a_clear_error(prometheus_url: str, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await query(f"{prometheus_url}/graph", "up", ctx)

    assert failure.value.reason is Reason.ERROR
    assert "not a Prometheus API answer" in failure.value.message


async def test_a_closed_port_is_a_connect_failure(closed_port: int, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await query(f"http://127.0.0.1:{closed_port}", "up", ctx)

    assert failure.value.reason is Reason.CONNECT
    assert f"127.0.0.1:{closed_port}" in failure.value.message


class _Guarded(QuietHandler):
    """Answers like Prometheus' query API only with the right credentials, as a reverse
    proxy in front of it does."""

    accepted: tuple[str, ...] = ()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") not in self.accepted:
            self.send_response(401)
            self.end_headers()
            return
        body = {"status": "success", "data": {"resultType": "vector", "result": []}}
        self.reply(200, json.dumps(body).encode())


@pytest.fixture
def guarded_url() -> Iterator[str]:
    basic = base64.b64encode(b"grafana:basic-secret").decode()
    handler = type("Guarded", (_Guarded,), {"accepted": ("Bearer bearer-secret", f"Basic {basic}")})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


async def test_credentials_come_from_the_environment(
    guarded_url: str, ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PROM_TOKEN", "bearer-secret")
    monkeypatch.setenv("TEST_PROM_PASSWORD", "basic-secret")
    bearer = prometheus.Spec(url=guarded_url, query="up", bearer_token_env="TEST_PROM_TOKEN")
    basic = prometheus.Spec.model_validate(
        {
            "url": guarded_url,
            "query": "up",
            "basic_auth": {"username": "grafana", "password_env": "TEST_PROM_PASSWORD"},
        }
    )

    assert (await prometheus.probe(bearer, ctx))["series"] == 0
    assert (await prometheus.probe(basic, ctx))["series"] == 0
    with pytest.raises(ProbeFailure) as failure:
        await prometheus.probe(prometheus.Spec(url=guarded_url, query="up"), ctx)
    assert failure.value.reason is Reason.AUTH
    assert "401" in failure.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "127.0.0.1:9090", "query": "up"},
        {"url": "http://127.0.0.1:9090", "query": ""},
        {"url": "http://127.0.0.1:9090", "query": "up", "bearer_token_env": "not a name"},
    ],
)
def test_invalid_specs_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        prometheus.Spec.model_validate(fields)
