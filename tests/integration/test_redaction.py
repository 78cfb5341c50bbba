"""Passwords in DSNs and URLs never come out: a daemon and `check` run items whose
credentials are sentinel strings, and every output is scanned for them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.exporter import Exporter, wait_for
from tests.support.servers import free_port
from tests.support.services import PG_HOST, PG_PORT, RedisServer, pg_database, psql

pytestmark = pytest.mark.slow

# A secret-named variable, as users are told to write it; its value is masked by name.
PASSWORD = f"Sntl{secrets.token_hex(8)}"
# A whole DSN in a variable whose name says nothing secret: masked because it is a DSN password.
DSN_PASSWORD = f"Dsnt{secrets.token_hex(8)}"
SENTINELS = (PASSWORD, DSN_PASSWORD)


@pytest.fixture
def role_and_database() -> Iterator[tuple[str, str]]:
    role = f"issue3_{secrets.token_hex(4)}"
    with pg_database("CREATE TABLE symbols (id int)") as database:
        psql(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        try:
            yield role, database
        finally:
            psql(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture
def guarded_redis() -> Iterator[RedisServer]:
    server = RedisServer("--requirepass", PASSWORD)
    server.start()
    yield server
    server.stop()


def write_config(tmp_path: Path, role: str, database: str, redis: RedisServer, closed: int) -> Path:
    pg = f"postgresql://{role}:${{READINESS_TEST_PG_PASSWORD}}@{PG_HOST}"
    config = tmp_path / "readiness.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
  default_interval: 1s
  default_timeout: 3s
  log_level: debug
  log_format: json
checklists:
  - name: secrets
    sections:
      - name: database
        items:
          - id: pg-ok
            title: PostgreSQL with a password
            postgres:
              dsn: "{pg}:{PG_PORT}/{database}"
              tables: [symbols]
              settings: [statement_timeout]
              query: SELECT current_user
            expect: ["missing_tables == 0", "value == '{role}'"]
          - id: pg-dsn-from-env
            title: A DSN from a variable with an innocent name
            postgres: {{dsn: "${{ISSUE3_DB_URL}}", query: "SELECT 1"}}
            expect: ["value == 1"]
          - id: pg-no-database
            title: A database that does not exist
            postgres: {{dsn: "{pg}:{PG_PORT}/issue3_missing"}}
          - id: pg-no-role
            title: A role that does not exist
            postgres:
              dsn: "postgresql://nobody_{role}:${{READINESS_TEST_PG_PASSWORD}}@{PG_HOST}:{PG_PORT}/{database}"
          - id: pg-closed
            title: A closed port
            postgres: {{dsn: "{pg}:{closed}/{database}"}}
          - id: pg-query-echoes-it
            title: A query whose error quotes the password
            postgres:
              dsn: "{pg}:{PG_PORT}/{database}"
              query: "SELECT '${{READINESS_TEST_PG_PASSWORD}}'::int"
      - name: cache
        items:
          - id: redis-ok
            title: Redis with a password
            redis: {{url: "redis://:${{READINESS_TEST_PG_PASSWORD}}@127.0.0.1:{redis.port}/0"}}
          - id: redis-closed
            title: Redis on a closed port
            redis: {{url: "redis://:${{READINESS_TEST_PG_PASSWORD}}@127.0.0.1:{closed}/0"}}
      - name: monitoring
        items:
          - id: prometheus-basic-auth
            title: Prometheus behind basic auth
            prometheus:
              url: http://127.0.0.1:{closed}
              query: up
              basic_auth: {{username: scraper, password_env: READINESS_TEST_PG_PASSWORD}}
          - id: prometheus-userinfo
            title: Prometheus with credentials in its URL
            prometheus:
              url: "http://scraper:${{READINESS_TEST_PG_PASSWORD}}@127.0.0.1:{closed}"
              query: up
""")
    return config


def leaks(where: str, text: str) -> list[str]:
    return [f"{where} contains {s!r}" for s in SENTINELS if s in text]


def all_run(exporter: Exporter) -> dict[str, Any] | None:
    items = {
        item["id"]: item
        for checklist in exporter.get("/status").json()["checklists"]
        for section in checklist["sections"]
        for item in section["items"]
    }
    return items if all(i["last_run"] for i in items.values()) else None


def test_no_output_shows_a_password(
    tmp_path: Path,
    role_and_database: tuple[str, str],
    guarded_redis: RedisServer,
) -> None:
    role, database = role_and_database
    closed_port = free_port()  # bound to find it, then released: nothing listens there
    config = write_config(tmp_path, role, database, guarded_redis, closed_port)
    env = {
        "READINESS_TEST_PG_PASSWORD": PASSWORD,
        "ISSUE3_DB_URL": f"postgresql://postgres:{DSN_PASSWORD}@{PG_HOST}:{PG_PORT}/{database}",
    }
    exporter = Exporter(config, env=env)
    exporter.start()
    try:
        items = wait_for(lambda: all_run(exporter), 20, "every item to run once", exporter)
        outputs = {
            "/metrics": exporter.get("/metrics").text,
            "/metrics (OpenMetrics)": exporter.get(
                "/metrics", headers={"Accept": "application/openmetrics-text"}
            ).text,
            "/status": exporter.get("/status").text,
            "/status (HTML)": exporter.get("/status", headers={"Accept": "text/html"}).text,
            "/health": exporter.get("/health").text,
            "/": exporter.get("/").text,
        }
    finally:
        exporter.stop()
    outputs["daemon log"] = exporter.output()
    outputs["state database"] = (tmp_path / "state.db").read_bytes().decode("latin-1")
    for fmt in ("json", "table", "markdown", "junit"):
        done = subprocess.run(
            [sys.executable, "-m", "exporter", "check", "--config", str(config), "--format", fmt],
            env={**os.environ, **env, "READINESS_LISTEN": f"127.0.0.1:{free_port()}"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        outputs[f"check --format {fmt}"] = done.stdout + done.stderr

    # The items ran as intended, so the outputs hold what a leak would have been in.
    reasons = {i: (v["passing"], v["reason"]) for i, v in items.items()}
    assert reasons == {
        "pg-ok": (True, "ok"),
        "pg-dsn-from-env": (True, "ok"),
        "pg-no-database": (False, "error"),
        "pg-no-role": (False, "auth"),
        "pg-closed": (False, "connect"),
        "pg-query-echoes-it": (False, "error"),
        "redis-ok": (True, "ok"),
        "redis-closed": (False, "connect"),
        "prometheus-basic-auth": (False, "connect"),
        "prometheus-userinfo": (False, "connect"),
    }
    assert (
        'invalid input syntax for type integer: "<redacted>"'
        in (items["pg-query-echoes-it"]["message"])
    )
    assert f"127.0.0.1:{closed_port}" in items["pg-closed"]["message"]
    assert outputs["daemon log"].strip(), "the daemon logged nothing: the scan would prove nothing"
    assert all(outputs.values())
    found = [leak for where, text in outputs.items() for leak in leaks(where, text)]
    assert not found, found
