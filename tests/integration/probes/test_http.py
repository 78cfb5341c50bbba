"""The `http` probe against real loopback HTTP and HTTPS servers."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import ValidationError

from exporter.probes import http
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason


async def test_a_200_with_its_body(http_url: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{http_url}/ok"), ctx)

    assert facts["status"] == 200
    assert facts["body"] == "ready"
    assert facts["body_size"] == 5
    assert facts["body_truncated"] is False
    assert facts["content_type"] == "text/plain"
    assert facts["http_version"] == "HTTP/1.1"
    assert facts["final_url"] == f"{http_url}/ok"
    assert facts["redirects"] == 0
    assert isinstance(facts["duration"], float)
    assert 0 <= facts["duration"] < 5
    assert "tls_days_left" not in facts


async def test_an_error_status_is_a_fact_not_a_failure(http_url: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{http_url}/unavailable"), ctx)

    assert facts["status"] == 503
    assert facts["body"] == "down for maintenance"


async def test_json_fields_become_dotted_facts(http_url: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{http_url}/json"), ctx)

    assert facts["content_type"] == "application/json"
    assert facts["json.status"] == "ok"
    assert facts["json.checks.db.up"] is True
    assert facts["json.checks.db.latency_ms"] == 3.5
    assert facts["json.items.0.id"] == 7
    assert facts["json.items.1.id"] == 8
    assert facts["json.version"] is None
    assert "json.checks" not in facts


async def test_every_response_header_is_a_fact(http_url: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{http_url}/headers"), ctx)

    assert facts["header.x-build"] == "1.2.3"
    assert facts["header.cache-control"] == "no-store"
    assert facts["header.content-length"] == "0"


async def test_redirects_are_followed_by_default(http_url: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{http_url}/redirect"), ctx)

    assert facts["status"] == 200
    assert facts["final_url"] == f"{http_url}/ok"
    assert facts["redirects"] == 1


async def test_a_redirect_can_be_the_answer(http_url: str, ctx: ProbeContext) -> None:
    spec = http.Spec(url=f"{http_url}/redirect", follow_redirects=False)

    facts = await http.probe(spec, ctx)

    assert facts["status"] == 302
    assert facts["header.location"] == "/ok"


async def test_a_redirect_loop_is_an_error(http_url: str, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await http.probe(http.Spec(url=f"{http_url}/loop"), ctx)

    assert failure.value.reason is Reason.ERROR


async def test_the_body_read_is_capped(http_url: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{http_url}/big", max_body_bytes="1KiB"), ctx)

    assert facts["body"] == "x" * 1024
    assert facts["body_size"] == 1024
    assert facts["body_truncated"] is True


async def test_the_declared_charset_decodes_the_body(http_url: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{http_url}/latin1"), ctx)

    assert facts["body"] == "café"


async def test_method_headers_and_body_are_sent(http_url: str, ctx: ProbeContext) -> None:
    spec = http.Spec(
        url=f"{http_url}/echo", method="post", headers={"Authorization": "Bearer t0k3n"}, body="hi"
    )

    facts = await http.probe(spec, ctx)

    assert facts["status"] == 201
    assert facts["json.method"] == "POST"
    assert facts["json.body"] == "hi"
    assert facts["json.authorization"] == "Bearer t0k3n"


async def test_one_client_is_shared_per_trust_setting(http_url: str, ctx: ProbeContext) -> None:
    await http.probe(http.Spec(url=f"{http_url}/ok"), ctx)
    await http.probe(http.Spec(url=f"{http_url}/json"), ctx)
    await http.probe(http.Spec(url=f"{http_url}/ok", insecure_skip_verify=True), ctx)

    assert len(ctx.resources._items) == 2


async def test_a_closed_port_is_a_connect_failure(closed_port: int, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await http.probe(http.Spec(url=f"http://127.0.0.1:{closed_port}/"), ctx)

    assert failure.value.reason is Reason.CONNECT
    assert f"127.0.0.1:{closed_port}" in failure.value.message


async def test_an_unknown_host_is_a_dns_failure(ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await http.probe(http.Spec(url="http://does-not-exist.invalid/"), ctx)

    assert failure.value.reason is Reason.DNS
    assert "does-not-exist.invalid:80" in failure.value.message


async def test_a_slow_route_times_out_within_the_budget(http_url: str) -> None:
    ctx = ProbeContext(timeout=0.5)
    started = time.monotonic()

    with pytest.raises(ProbeFailure) as failure:
        await asyncio.wait_for(http.probe(http.Spec(url=f"{http_url}/slow"), ctx), 0.5)

    assert time.monotonic() - started < 0.5
    assert failure.value.reason is Reason.TIMEOUT
    await ctx.resources.aclose()


async def test_a_silent_server_times_out_within_the_budget(silent_port: int) -> None:
    ctx = ProbeContext(timeout=0.5)

    with pytest.raises(ProbeFailure) as failure:
        spec = http.Spec(url=f"https://127.0.0.1:{silent_port}/")
        await asyncio.wait_for(http.probe(spec, ctx), 0.5)

    assert failure.value.reason is Reason.TIMEOUT
    await ctx.resources.aclose()


async def test_https_reports_days_left(https_url: str, ca_file: str, ctx: ProbeContext) -> None:
    facts = await http.probe(http.Spec(url=f"{https_url}/ok", ca_file=ca_file), ctx)

    assert facts["status"] == 200
    assert isinstance(facts["tls_days_left"], float)
    assert facts["tls_days_left"] > 14
    assert facts["tls_version"] in ("TLSv1.2", "TLSv1.3")


async def test_an_untrusted_certificate_is_a_tls_failure(https_url: str, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await http.probe(http.Spec(url=f"{https_url}/ok"), ctx)

    assert failure.value.reason is Reason.TLS


@pytest.mark.parametrize("fixture", ["expired_https_url", "wrong_host_https_url"])
async def test_a_bad_certificate_is_a_tls_failure(
    fixture: str, ca_file: str, ctx: ProbeContext, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(fixture)

    with pytest.raises(ProbeFailure) as failure:
        await http.probe(http.Spec(url=f"{url}/ok", ca_file=ca_file), ctx)

    assert failure.value.reason is Reason.TLS


async def test_skipping_verification_still_reports_expiry(
    expired_https_url: str, ctx: ProbeContext
) -> None:
    spec = http.Spec(url=f"{expired_https_url}/ok", insecure_skip_verify=True)

    facts = await http.probe(spec, ctx)

    assert facts["status"] == 200
    assert facts["tls_days_left"] == pytest.approx(-10, abs=0.01)


async def test_concurrent_probes_each_see_their_own_servers_certificate(
    https_url: str, expired_https_url: str, ctx: ProbeContext
) -> None:
    """The certificate is recorded per request as the shared client connects (or reuses a
    pooled connection): probes running at once through one client never see each other's."""
    valid = http.Spec(url=f"{https_url}/ok", insecure_skip_verify=True)
    expired = http.Spec(url=f"{expired_https_url}/ok", insecure_skip_verify=True)
    for _ in range(2):  # the second round reuses the pooled connections
        results = await asyncio.gather(*(http.probe(s, ctx) for s in (valid, expired) * 3))
        for facts in results[0::2]:
            assert facts["tls_days_left"] > 14
        for facts in results[1::2]:
            assert facts["tls_days_left"] == pytest.approx(-10, abs=0.01)


async def test_after_a_redirect_the_final_connections_certificate_counts(
    https_url: str, ca_file: str, ctx: ProbeContext
) -> None:
    facts = await http.probe(http.Spec(url=f"{https_url}/redirect", ca_file=ca_file), ctx)

    assert facts["redirects"] == 1
    assert facts["tls_days_left"] > 14
    assert facts["tls_version"] in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "/health", "http://"])
def test_the_url_must_be_absolute_http(url: str) -> None:
    with pytest.raises(ValidationError):
        http.Spec(url=url)
