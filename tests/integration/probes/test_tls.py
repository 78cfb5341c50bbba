"""The `tls` probe against loopback servers presenting test certificates, good and bad."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.probes import tls
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_a_valid_certificate(https_url: str, ca_file: str, ctx: ProbeContext) -> None:
    spec = tls.Spec(host="127.0.0.1", port=port_of(https_url), ca_file=ca_file)

    facts = await tls.probe(spec, ctx)

    assert facts["chain_valid"] is True
    assert facts["hostname_valid"] is True
    assert facts["verify_error"] is None
    assert isinstance(facts["days_left"], float)
    assert facts["days_left"] > 14
    assert facts["sans"] == ["localhost", "127.0.0.1"]
    assert facts["version"] in ("TLSv1.2", "TLSv1.3")
    assert isinstance(facts["cipher"], str)
    assert "O=trustme" in str(facts["issuer"])
    assert str(facts["not_after"]).endswith("Z")
    assert datetime.fromisoformat(str(facts["not_before"])) < datetime.now(UTC)
    assert isinstance(facts["duration"], float)


async def test_an_untrusted_issuer_is_evidence_not_an_error(
    https_url: str, ctx: ProbeContext
) -> None:
    facts = await tls.probe(tls.Spec(host="127.0.0.1", port=port_of(https_url)), ctx)

    assert facts["chain_valid"] is False
    assert facts["verify_error"] == "unable to get local issuer certificate"
    assert facts["hostname_valid"] is True
    assert isinstance(facts["days_left"], float)
    assert facts["days_left"] > 14


async def test_an_expired_certificate_has_negative_days_left(
    expired_https_url: str, ca_file: str, ctx: ProbeContext
) -> None:
    spec = tls.Spec(host="127.0.0.1", port=port_of(expired_https_url), ca_file=ca_file)

    facts = await tls.probe(spec, ctx)

    assert facts["days_left"] == pytest.approx(-10, abs=0.01)
    assert facts["chain_valid"] is False
    assert "expired" in str(facts["verify_error"])
    assert facts["hostname_valid"] is True


async def test_a_certificate_for_another_host(
    wrong_host_https_url: str, ca_file: str, ctx: ProbeContext
) -> None:
    spec = tls.Spec(host="127.0.0.1", port=port_of(wrong_host_https_url), ca_file=ca_file)

    facts = await tls.probe(spec, ctx)

    assert facts["hostname_valid"] is False
    assert facts["chain_valid"] is True
    assert facts["sans"] == ["other.example.test"]


async def test_server_name_is_sent_and_verified(
    wildcard_https_url: str, ca_file: str, ctx: ProbeContext
) -> None:
    spec = tls.Spec(
        host="127.0.0.1",
        port=port_of(wildcard_https_url),
        server_name="api.example.test",
        ca_file=ca_file,
    )

    facts = await tls.probe(spec, ctx)

    assert facts["hostname_valid"] is True
    assert facts["chain_valid"] is True


async def test_a_server_below_min_version_fails(
    tls12_https_url: str, ca_file: str, ctx: ProbeContext
) -> None:
    port = port_of(tls12_https_url)
    facts = await tls.probe(tls.Spec(host="127.0.0.1", port=port, ca_file=ca_file), ctx)
    assert facts["version"] == "TLSv1.2"

    with pytest.raises(ProbeFailure) as failure:
        spec = tls.Spec(host="127.0.0.1", port=port, ca_file=ca_file, min_version="TLS1.3")
        await tls.probe(spec, ctx)

    assert failure.value.reason is Reason.TLS
    assert f"127.0.0.1:{port}" in failure.value.message


async def test_a_plain_http_server_is_a_tls_failure(http_url: str, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await tls.probe(tls.Spec(host="127.0.0.1", port=port_of(http_url)), ctx)

    assert failure.value.reason is Reason.TLS


async def test_a_closed_port_is_a_connect_failure(closed_port: int, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await tls.probe(tls.Spec(host="127.0.0.1", port=closed_port), ctx)

    assert failure.value.reason is Reason.CONNECT


async def test_a_missing_ca_file_is_a_configuration_error(
    https_url: str, tmp_path: Path, ctx: ProbeContext
) -> None:
    spec = tls.Spec(host="127.0.0.1", port=port_of(https_url), ca_file=str(tmp_path / "none.pem"))

    with pytest.raises(ProbeFailure) as failure:
        await tls.probe(spec, ctx)

    assert failure.value.reason is Reason.ERROR


async def test_a_silent_server_gives_up_within_the_budget(silent_port: int) -> None:
    ctx = ProbeContext(timeout=0.5)
    started = time.monotonic()

    with pytest.raises(ProbeFailure) as failure:
        await asyncio.wait_for(tls.probe(tls.Spec(host="127.0.0.1", port=silent_port), ctx), 0.5)

    assert time.monotonic() - started < 0.5
    assert failure.value.reason is Reason.TIMEOUT
    await ctx.resources.aclose()


@pytest.mark.parametrize(
    ("name", "sans", "matches"),
    [
        ("api.example.test", ["api.example.test"], True),
        ("API.Example.Test.", ["api.example.test"], True),
        ("api.example.test", ["*.example.test"], True),
        ("a.b.example.test", ["*.example.test"], False),
        ("example.test", ["*.example.test"], False),
        ("api.example.test", ["other.test", "127.0.0.1"], False),
        ("127.0.0.1", ["127.0.0.1"], True),
        ("::1", ["0:0:0:0:0:0:0:1"], True),
        ("127.0.0.1", ["*.0.0.1"], False),
        ("127.0.0.1", ["localhost"], False),
    ],
)
def test_hostname_matching(name: str, sans: list[str], matches: bool) -> None:
    assert tls.hostname_matches(name, sans) is matches
