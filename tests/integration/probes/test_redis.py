"""The `redis` probe against the machine's Redis (read only) and private redis-servers."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from exporter.conditions import Condition
from exporter.probes import redis as redis_probe
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason
from tests.support.services import RedisServer

SHARED = "redis://127.0.0.1:6379/0"


def redis_cli(port: int, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--no-auth-warning", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.strip()


def info_field(port: int, name: str) -> str:
    lines = redis_cli(port, "INFO").splitlines()
    return next(line.split(":", 1)[1] for line in lines if line.startswith(f"{name}:"))


@pytest.fixture
def private() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


async def test_version_role_and_info_fields_of_the_shared_server(ctx: ProbeContext) -> None:
    facts = await redis_probe.probe(redis_probe.Spec(url=SHARED), ctx)

    assert facts["connected"] is True
    assert facts["version"] == info_field(6379, "redis_version")
    assert facts["role"] == info_field(6379, "role")
    assert Condition.parse("version >= 6").holds(facts)
    assert facts["info.redis_version"] == facts["version"]
    assert facts["info.maxmemory"] == int(info_field(6379, "maxmemory"))
    assert facts["info.aof_enabled"] == int(info_field(6379, "aof_enabled"))
    assert facts["info.rdb_last_bgsave_status"] == info_field(6379, "rdb_last_bgsave_status")
    assert facts["info.maxmemory_policy"] == info_field(6379, "maxmemory_policy")
    assert isinstance(facts["info.mem_fragmentation_ratio"], float)
    assert isinstance(facts["rdb_last_save_age"], float)
    assert facts["rdb_last_save_age"] >= 0
    assert isinstance(facts["duration"], float)
    assert 0 < facts["duration"] < 1


async def test_memory_used_ratio_once_maxmemory_is_set(
    private: RedisServer, ctx: ProbeContext
) -> None:
    spec = redis_probe.Spec(url=private.url)
    before = await redis_probe.probe(spec, ctx)
    redis_cli(private.port, "CONFIG", "SET", "maxmemory", "64mb")

    after = await redis_probe.probe(spec, ctx)

    assert before["info.maxmemory"] == 0
    assert "memory_used_ratio" not in before
    assert after["info.maxmemory"] == 64 * 1024 * 1024
    used = after["info.used_memory"]
    assert isinstance(used, int)
    assert after["memory_used_ratio"] == pytest.approx(used / (64 * 1024 * 1024))
    assert 0 < after["memory_used_ratio"] < 0.5
    assert Condition.parse("memory_used_ratio < 0.8").holds(after)


async def test_keyspace_and_hit_ratio(private: RedisServer, ctx: ProbeContext) -> None:
    redis_cli(private.port, "SET", "quote:AAPL", "189.5")
    for key in ("quote:AAPL", "quote:AAPL", "quote:AAPL", "quote:NONE"):
        redis_cli(private.port, "GET", key)

    facts = await redis_probe.probe(redis_probe.Spec(url=private.url), ctx)

    assert facts["info.db0.keys"] == 1
    assert facts["info.keyspace_hits"] == 3
    assert facts["info.keyspace_misses"] == 1
    assert facts["hit_ratio"] == 0.75
    assert Condition.parse("hit_ratio > 0.9").holds(facts) is False


async def test_a_replica_reports_its_role(private: RedisServer, ctx: ProbeContext) -> None:
    replica = RedisServer("--replicaof", "127.0.0.1", str(private.port))
    replica.start()
    try:
        facts = await redis_probe.probe(redis_probe.Spec(url=replica.url), ctx)
    finally:
        replica.stop()

    assert facts["role"] == "slave"  # INFO's word, as redis-cli and dashboards show it
    assert facts["info.master_port"] == private.port


async def test_a_server_that_went_away_fails_fast_then_recovers(
    private: RedisServer, ctx: ProbeContext
) -> None:
    spec = redis_probe.Spec(url=private.url)
    assert (await redis_probe.probe(spec, ctx))["connected"] is True
    private.stop()
    started = time.monotonic()

    with pytest.raises(ProbeFailure) as failure:
        await redis_probe.probe(spec, ctx)

    assert time.monotonic() - started < 1
    assert failure.value.reason is Reason.CONNECT
    assert failure.value.message == f"127.0.0.1:{private.port}: Connection refused"
    assert failure.value.facts["connected"] is False
    private.start()
    # The shared client's pooled connection died with the old server; one retry replaces it.
    assert (await redis_probe.probe(spec, ctx))["connected"] is True


async def test_the_client_is_reused_across_runs(private: RedisServer, ctx: ProbeContext) -> None:
    spec = redis_probe.Spec(url=private.url)
    first = await redis_probe.probe(spec, ctx)
    for _ in range(5):
        await redis_probe.probe(spec, ctx)

    last = await redis_probe.probe(spec, ctx)

    assert last["info.connected_clients"] == 1
    assert last["info.total_connections_received"] == first["info.total_connections_received"]


async def test_a_wrong_or_missing_password_is_an_auth_failure(ctx: ProbeContext) -> None:
    server = RedisServer("--requirepass", "s3cret-pass")
    server.start()
    try:
        good = await redis_probe.probe(
            redis_probe.Spec(url=f"redis://:s3cret-pass@127.0.0.1:{server.port}/0"), ctx
        )
        failures = []
        for url in (server.url, f"redis://:wrong-pass@127.0.0.1:{server.port}/0"):
            with pytest.raises(ProbeFailure) as failure:
                await redis_probe.probe(redis_probe.Spec(url=url), ctx)
            failures.append(failure.value)
    finally:
        server.stop()

    assert good["connected"] is True
    assert [f.reason for f in failures] == [Reason.AUTH, Reason.AUTH]
    assert all(f"127.0.0.1:{server.port}" in f.message for f in failures)
    assert not [f.message for f in failures if "wrong-pass" in f.message or "s3cret" in f.message]


async def test_a_closed_port_is_a_connect_failure(closed_port: int, ctx: ProbeContext) -> None:
    spec = redis_probe.Spec(url=f"redis://:hunter22@127.0.0.1:{closed_port}/0")

    with pytest.raises(ProbeFailure) as failure:
        await redis_probe.probe(spec, ctx)

    assert failure.value.reason is Reason.CONNECT
    assert failure.value.message == f"127.0.0.1:{closed_port}: Connection refused"


async def test_a_server_that_never_answers_gives_up_within_the_budget(silent_port: int) -> None:
    ctx = ProbeContext(timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(ProbeFailure) as failure:
            await asyncio.wait_for(
                redis_probe.probe(redis_probe.Spec(url=f"redis://127.0.0.1:{silent_port}"), ctx),
                ctx.timeout,
            )
    finally:
        await ctx.resources.aclose()

    assert time.monotonic() - started < ctx.timeout
    assert failure.value.reason is Reason.TIMEOUT
    assert f"127.0.0.1:{silent_port}" in failure.value.message


async def test_an_unknown_host_is_a_dns_failure(ctx: ProbeContext) -> None:
    spec = redis_probe.Spec(url="redis://no-such-host.invalid:6379")

    with pytest.raises(ProbeFailure) as failure:
        await redis_probe.probe(spec, ctx)

    assert failure.value.reason is Reason.DNS


def test_info_text_is_parsed_with_versions_kept_as_text() -> None:
    info = redis_probe.parse_info(
        "# Server\r\nredis_version:7.10\r\nuptime_in_seconds:42\r\n"
        "mem_fragmentation_ratio:1.25\r\nrole:master\r\n\r\n# Keyspace\r\n"
        "db0:keys=3,expires=1,avg_ttl=0\r\n"
    )

    assert info == {
        "redis_version": "7.10",
        "uptime_in_seconds": 42,
        "mem_fragmentation_ratio": 1.25,
        "role": "master",
        "db0.keys": 3,
        "db0.expires": 1,
        "db0.avg_ttl": 0,
    }


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", ""])
def test_the_url_must_be_a_redis_url(url: str) -> None:
    with pytest.raises(ValidationError):
        redis_probe.Spec(url=url)
