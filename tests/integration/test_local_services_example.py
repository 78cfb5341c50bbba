"""config/examples/local-services.yaml, run as a user runs it (`check --format json`) against
a real database, a private Redis and the test Prometheus, each set up the way the example
expects; and its two items this machine cannot pass (TLS, WAL archiving) fail saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Monitoring
from tests.support.servers import free_port
from tests.support.services import (
    MARKET_SCHEMA,
    PG_HOST,
    PG_PORT,
    RedisServer,
    pg_database,
    psql,
)

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "config" / "examples" / "local-services.yaml"


@pytest.fixture
def database() -> Iterator[str]:
    with pg_database(MARKET_SCHEMA) as name:
        psql(f"ALTER DATABASE {name} SET statement_timeout = '30s'")
        yield name


@pytest.fixture
def cache() -> Iterator[RedisServer]:
    server = RedisServer("--maxmemory", "64mb")
    server.start()
    cli = ["redis-cli", "-p", str(server.port)]
    subprocess.run([*cli, "SET", "quote:AAPL", "189.5"], check=True, capture_output=True)
    for key in ["quote:AAPL"] * 19 + ["quote:NONE"]:
        subprocess.run([*cli, "GET", key], check=True, capture_output=True)
    yield server
    server.stop()


def run_check(tmp_path: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config", str(EXAMPLE), "--format", "json"],
        env={
            **os.environ,
            "READINESS_STATE": f"sqlite:///{tmp_path}/state.db",
            "READINESS_LISTEN": f"127.0.0.1:{free_port()}",
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    document = json.loads(done.stdout)
    return {
        item["id"]: item
        for checklist in document["checklists"]
        for section in checklist["sections"]
        for item in section["items"]
    }


def test_every_service_item_against_real_servers(
    tmp_path: Path, database: str, cache: RedisServer, monitoring: Monitoring
) -> None:
    items = run_check(
        tmp_path,
        {
            "LOCAL_PG_DSN": f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}",
            "LOCAL_REDIS_URL": cache.url,
            "LOCAL_PROMETHEUS_URL": monitoring.url,
            "LOCAL_APP_JOB": "app",
        },
    )

    failing = {i: (v["reason"], v["failed"], v["message"]) for i, v in items.items()}
    failing = {i: f for i, f in failing.items() if not items[i]["passing"]}
    # This machine's PostgreSQL has ssl = off and archive_mode = off: those two fail, on facts.
    assert set(failing) == {"database-tls", "backup-strategy"}, failing
    assert failing["database-tls"][:2] == (
        "condition",
        ["setting.ssl == true (got 'off')", "ssl == true (got false)"],
    )
    assert failing["backup-strategy"][0] == "condition"
    assert "setting.archive_mode != 'off' (got 'off')" in failing["backup-strategy"][1]
    assert items["cache-hit-rate"]["facts"]["hit_ratio"] == 0.95
    assert items["api-error-rate"]["facts"]["value"] < 0.05
    assert items["api-latency-p99"]["facts"]["value"] < 0.01
    assert items["required-tables"]["facts"]["missing_tables"] == 0


def test_an_empty_schema_and_cold_cache_fail_on_the_right_items(
    tmp_path: Path, monitoring: Monitoring
) -> None:
    with pg_database() as empty:
        items = run_check(
            tmp_path,
            {
                "LOCAL_PG_DSN": f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{empty}",
                "LOCAL_PROMETHEUS_URL": monitoring.url,
                "LOCAL_APP_JOB": "no-such-job",
            },
        )

    assert items["postgresql-15"]["passing"] is True
    assert items["required-tables"]["failed"] == ["missing_tables == 0 (got 2)"]
    assert items["required-tables"]["facts"]["missing_tables_names"] == ["symbols", "market.quotes"]
    assert items["query-timeouts"]["failed"][0] == "setting.statement_timeout > 0s (got '0')"
    assert items["app-data-flowing"]["reason"] == "error"
    assert 'relation "market.quotes" does not exist' in items["app-data-flowing"]["message"]
    assert items["prometheus-scraping"]["failed"] == ["value == 1 (fact value missing)"]
    assert items["alert-rules"]["passing"] is True
