"""Secrets never come out: a daemon, `check` and `report` run items whose credentials are
sentinel strings (DSN and URL passwords, tokens, echoed headers, a command's environment), and
every output, log and the stored evidence is scanned for them."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from exporter.redact import MASK
from tests.support.api import post_attestation
from tests.support.exporter import Exporter, wait_for
from tests.support.servers import QuietHandler, free_port
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


# --- every verb, the stored evidence, echoed headers, a command's environment (issue 13) --------

# Each in a variable whose name says nothing secret: masked because of where it lands.
ECHO_PASSWORD = f"Echp{secrets.token_hex(8)}"  # the password of http://alice:...@
BASIC = base64.b64encode(f"alice:{ECHO_PASSWORD}".encode()).decode()  # what aiohttp sends
QUERY_TOKEN = f"Qtok{secrets.token_hex(8)}"  # ?token=...
HEADER_KEY = f"Hdrk{secrets.token_hex(8)}"  # X-Api-Key: ...
COMMAND_PASSWORD = f"Cmdp{secrets.token_hex(8)}"  # a command's env: DB_PASSWORD
ADMIN_TOKEN = f"Admn{secrets.token_hex(12)}"  # the write API's admin token
# In the daemon's environment only: a command must not see it unless it inherits everything.
AWS_SECRET = f"Awss{secrets.token_hex(12)}"
ISSUE13_SECRETS = (ECHO_PASSWORD, BASIC, QUERY_TOKEN, HEADER_KEY, COMMAND_PASSWORD, ADMIN_TOKEN)
ISSUE13_ENV = {
    "ECHO_USER_PW": ECHO_PASSWORD,
    "ECHO_QUERY": QUERY_TOKEN,
    "ECHO_HEADER": HEADER_KEY,
    "CMD_VALUE": COMMAND_PASSWORD,
    "ISSUE13_ADMIN": ADMIN_TOKEN,
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
}


class _EchoHandler(QuietHandler):
    """Answers with the request line and headers, as httpbin's /anything does."""

    def do_GET(self) -> None:
        echoed = {"path": self.path, "headers": dict(self.headers.items())}
        self.reply(200, json.dumps(echoed).encode())


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def issue13_config(tmp_path: Path, state: str, echo_port: int) -> Path:
    echo = f"127.0.0.1:{echo_port}"
    print_env = [sys.executable, "-c", "import os; print(sorted(os.environ.items()))"]
    config = tmp_path / f"issue13-{secrets.token_hex(3)}.yaml"
    config.write_text(f"""
exporter:
  state: "{state}"
  default_interval: 1s
  default_timeout: 5s
  log_level: debug
  log_format: json
  api_tokens:
    - {{name: admin, token_env: ISSUE13_ADMIN, roles: [admin, attest, read]}}
checklists:
  - name: echoes
    sections:
      - name: targets
        items:
          - id: basic-from-url
            title: A target that echoes the Authorization header built from the URL
            http: {{url: "http://alice:${{ECHO_USER_PW}}@{echo}/anything?token=${{ECHO_QUERY}}"}}
            expect: ["body contains 'Authorization'"]
          - id: headers
            title: A target that echoes the configured headers
            http:
              url: "http://{echo}/anything"
              headers: {{X-Api-Key: "${{ECHO_HEADER}}", Authorization: "Bearer ${{ISSUE13_ADMIN}}"}}
            expect: ["body contains 'X-Api-Key'"]
          - id: fails-with-it
            title: A failing condition quotes the body
            http: {{url: "http://alice:${{ECHO_USER_PW}}@{echo}/anything?token=${{ECHO_QUERY}}"}}
            expect: ["body == 'something else'"]
      - name: commands
        items:
          - id: secret-env
            title: A command given a password in its env
            command:
              argv: [{sys.executable}, -c, "import os; print(os.environ['DB_PASSWORD'])"]
              env: {{DB_PASSWORD: "${{CMD_VALUE}}"}}
          - id: env-minimal
            title: A command sees PATH, LANG, HOME and its env only
            command: {{argv: {json.dumps(print_env)}}}
          - id: env-inherited
            title: A command that inherits the whole environment
            command: {{argv: {json.dumps(print_env)}, inherit_env: true}}
""")
    return config


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args, "--config", str(config)],
        env={**os.environ, **ISSUE13_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def issue13_leaks(outputs: dict[str, str]) -> list[str]:
    return [
        f"{where} contains {secret!r}"
        for where, text in outputs.items()
        for secret in (*ISSUE13_SECRETS, AWS_SECRET)
        if secret in text
    ]


def check_and_report(config: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Every output of `check` and `report` for `config`, and the items `check` printed."""
    outputs: dict[str, str] = {}
    items: dict[str, Any] = {}
    for fmt in ("json", "table", "markdown", "junit"):
        done = cli(config, "check", "--no-serve", "--format", fmt)
        assert done.returncode == 1, done.stderr  # `fails-with-it` fails, by design
        outputs[f"check --format {fmt}"] = done.stdout + done.stderr
        if fmt == "json":
            items = items_of(json.loads(done.stdout))
    for fmt in ("markdown", "html"):
        done = cli(config, "report", "--format", fmt)
        assert done.returncode == 0, done.stderr
        outputs[f"report --format {fmt}"] = done.stdout + done.stderr
    return outputs, items


def items_of(document: dict[str, Any]) -> dict[str, Any]:
    return {
        item["id"]: item
        for checklist in document["checklists"]
        for section in checklist["sections"]
        for item in section["items"]
    }


def assert_ran_as_intended(items: dict[str, Any]) -> None:
    """The outputs hold what a leak would have been in: the echoes, the environments."""
    assert {i: v["reason"] for i, v in items.items()} == {
        "basic-from-url": "ok",
        "headers": "ok",
        "fails-with-it": "condition",
        "secret-env": "ok",
        "env-minimal": "ok",
        "env-inherited": "ok",
    }
    assert f"Basic {MASK}" in items["basic-from-url"]["facts"]["body"]
    assert "X-Api-Key" in items["headers"]["facts"]["body"]
    assert items["secret-env"]["facts"]["stdout"] == f"{MASK}\n"
    minimal = items["env-minimal"]["facts"]["stdout"]
    assert "'PATH'" in minimal
    assert "AWS_SECRET_ACCESS_KEY" not in minimal  # not masked: never there
    assert "ISSUE13_ADMIN" not in minimal
    assert "('AWS_SECRET_ACCESS_KEY', " in items["env-inherited"]["facts"]["stdout"]


def test_every_verb_and_the_sqlite_evidence_mask_secrets(tmp_path: Path, echo_server: int) -> None:
    config = issue13_config(tmp_path, f"sqlite:///{tmp_path}/state.db", echo_server)
    outputs, items = check_and_report(config)
    assert_ran_as_intended(items)
    outputs["state database"] = (tmp_path / "state.db").read_bytes().decode("latin-1")
    assert "X-Api-Key" in outputs["state database"]  # the echoed evidence was stored
    found = issue13_leaks(outputs)
    assert not found, found


def test_postgresql_evidence_is_masked_before_it_is_written(
    tmp_path: Path, echo_server: int
) -> None:
    with pg_database(prefix="issue13") as database:
        state = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}"
        config = issue13_config(tmp_path, state, echo_server)
        outputs, items = check_and_report(config)
        dump = subprocess.run(
            [
                "pg_dump",
                "--data-only",
                "-h",
                PG_HOST,
                "-p",
                str(PG_PORT),
                "-U",
                "postgres",
                database,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    assert_ran_as_intended(items)
    assert "X-Api-Key" in dump
    outputs["PostgreSQL dump"] = dump
    found = issue13_leaks(outputs)
    assert not found, found


def test_the_daemon_masks_echoed_credentials_and_command_environments(
    tmp_path: Path, echo_server: int
) -> None:
    config = issue13_config(tmp_path, f"sqlite:///{tmp_path}/daemon.db", echo_server)
    exporter = Exporter(config, env=ISSUE13_ENV)
    exporter.start()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def every_item_ran() -> dict[str, Any] | None:
        items = items_of(exporter.get("/status", headers=auth).json())
        return items if all(i["last_run"] for i in items.values()) else None

    try:
        items = wait_for(every_item_ran, 20, "every item to run once", exporter)
        outputs = {
            "/status": exporter.get("/status", headers=auth).text,
            "/status (HTML)": exporter.get("/status", headers={**auth, "Accept": "text/html"}).text,
            "/metrics": exporter.get("/metrics").text,
        }
    finally:
        exporter.stop()
    assert_ran_as_intended(items)
    outputs["daemon log"] = exporter.output()
    assert "fails-with-it" in outputs["daemon log"]  # the failing run was logged
    outputs["state database"] = (tmp_path / "daemon.db").read_bytes().decode("latin-1")
    found = issue13_leaks(outputs)
    assert not found, found


def test_config_errors_show_the_variable_not_its_value(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("""
exporter:
  listen: "${ISSUE13_ADMIN}"
checklists:
  - name: app
    sections:
      - name: s
        items:
          - id: api
            title: API
            schedule: "${ECHO_QUERY}"
            http: {url: "http://127.0.0.1/health"}
""")
    done = cli(config, "validate")
    assert done.returncode == 2
    assert "broken.yaml:3:" in done.stderr
    assert "'${ISSUE13_ADMIN}' is not host:port" in done.stderr
    assert "invalid cron schedule '${ECHO_QUERY}'" in done.stderr
    found = issue13_leaks({"validate": done.stdout + done.stderr})
    assert not found, found


@pytest.mark.parametrize("spoof", ["mallory\u202eecila", "al\u200bice", "bob\u2066x\u2069"])
def test_attestations_signed_with_invisible_characters_are_refused(
    tmp_path: Path, spoof: str
) -> None:
    config = tmp_path / "manual.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
  api_tokens: [{{name: admin, token_env: ISSUE13_ADMIN, roles: [attest, read]}}]
checklists:
  - name: app
    sections:
      - name: s
        items: [{{id: drill, title: Restore drill, manual: {{}}}}]
""")
    done = cli(config, "attest", "app", "drill", "--by", spoof)
    assert done.returncode == 2, done.stdout
    assert "invisible or control characters" in done.stderr
    exporter = Exporter(config, env=ISSUE13_ENV)
    exporter.start()
    try:
        refused = post_attestation(exporter, ADMIN_TOKEN, item="drill", by=spoof)
        hidden_note = post_attestation(exporter, ADMIN_TOKEN, item="drill", by="alice", note=spoof)
        # A note is free text: a pasted connection string keeps its password out of the API.
        pasted = f"restored with psql postgresql://app:{AWS_SECRET}@db/app"
        recorded = post_attestation(exporter, ADMIN_TOKEN, item="drill", by="bob", note=pasted)
        history = exporter.get(
            "/api/v1/attestations?checklist=app&item=drill",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    finally:
        exporter.stop()
    assert (refused.status_code, hidden_note.status_code) == (422, 422), refused.text
    assert "invisible" in refused.text
    assert recorded.status_code == 201, recorded.text
    assert history.status_code == 200
    assert [a["by"] for a in history.json()["attestations"]] == ["bob"]  # the refused: not recorded
    assert AWS_SECRET not in recorded.text + history.text


class _LettersHandler(QuietHandler):
    """64 KiB of letters: the text the quadratic masker took seconds over."""

    def do_GET(self) -> None:
        self.reply(200, b"a" * 64 * 1024, "text/plain")


def test_status_with_a_64_kib_body_answers_in_milliseconds(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LettersHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "big.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
  default_interval: 1s
checklists:
  - name: big
    sections:
      - name: s
        items:
          - id: letters
            title: A target that answers 64 KiB of text
            http: {{url: "http://127.0.0.1:{server.server_address[1]}/"}}
""")
    exporter = Exporter(config)
    exporter.start()
    try:
        wait_for(lambda: all_run(exporter), 20, "the item to run", exporter)
        timings = []
        for _ in range(3):
            status = exporter.get("/status")
            timings.append(status.elapsed.total_seconds())
        body = status.json()["checklists"][0]["sections"][0]["items"][0]["facts"]["body"]
    finally:
        exporter.stop()
        server.shutdown()
        server.server_close()
    assert len(body) == 64 * 1024
    # The quadratic masker held /status (and the event loop) for 5-10 s on this.
    assert min(timings) < 0.5, timings
