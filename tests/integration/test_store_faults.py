"""Store faults as a user meets them, against real `serve` subprocesses: a PostgreSQL that
accepts connections and never answers (a black-hole proxy in front of the real server), a
commit that never answers, a SQLite file deleted under the daemon, a full disk (a 1 MiB tmpfs),
two daemons on one file, and state files the CLI cannot use."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporter.history import STATES
from tests.support.api import post_attestation
from tests.support.cli import run_cli
from tests.support.exporter import Exporter, wait_for
from tests.support.servers import free_port
from tests.support.services import PG_HOST, PG_PORT, TcpProxy, psql

pytestmark = pytest.mark.slow

TOKEN = "attest-secret-0123456789abcdef"
ENV = {"I13_ATTEST_TOKEN": TOKEN}


def write_config(tmp_path: Path, state: str, interval: str = "1s") -> Path:
    (tmp_path / "present").write_text("x")
    path = tmp_path / "readiness.yaml"
    path.write_text(f"""
exporter:
  state: "{state}"
  default_interval: {interval}
  api_tokens:
    - {{name: oncall, token_env: I13_ATTEST_TOKEN, roles: [attest, read]}}
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: present
            title: A file that is there
            file: {{path: "{tmp_path}/present"}}
          - id: on-call
            title: On-call rotation established
            manual: {{}}
""")
    return path


def write_errors(exporter: Exporter, store: str) -> float:
    return exporter.value("readiness_state_write_errors_total", store=store) or 0.0


def attest(exporter: Exporter, note: str = "") -> httpx.Response:
    return post_attestation(exporter, TOKEN, item="on-call", by="alice", note=note)


def ready_status(exporter: Exporter) -> int:
    return exporter.get("/health/ready").status_code


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[Exporter]]:
    """The exporters a test starts, stopped (SIGKILL if need be) afterwards."""
    started: list[Exporter] = []
    yield started
    for exporter in started:
        if exporter.proc is not None:
            exporter.stop(signal.SIGKILL)


def test_a_postgresql_that_never_answers_hangs_nothing(
    tmp_path: Path,
    database: str,
    proxy: TcpProxy,
    serve: list[Exporter],
) -> None:
    dsn = database.replace(f":{PG_PORT}/", f":{proxy.port}/")
    exporter = Exporter(write_config(tmp_path, dsn), env=ENV)
    serve.append(exporter)
    exporter.start()
    assert attest(exporter).status_code == 201
    assert write_errors(exporter, "postgresql") == 0

    proxy.freeze()
    frozen = time.monotonic()
    wait_for(lambda: ready_status(exporter) == 503, 10, "/health/ready 503", exporter)
    assert time.monotonic() - frozen < 8

    # /metrics serves from memory meanwhile, fast, while probes keep running and their
    # results (not written) are counted.
    wait_for(lambda: write_errors(exporter, "postgresql") >= 2, 15, "failed writes", exporter)
    runs = exporter.value("readiness_item_last_run_timestamp_seconds", item="present")
    assert runs is not None
    slowest = 0.0
    for _ in range(10):
        started = time.monotonic()
        assert exporter.get("/metrics").status_code == 200
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 1.0, f"a scrape took {slowest:.2f}s with the database hung"
    wait_for(
        lambda: (
            (exporter.value("readiness_item_last_run_timestamp_seconds", item="present") or 0)
            > runs
        ),
        5,
        "the probe to run again",
        exporter,
    )
    response = attest(exporter)
    assert response.status_code == 503, response.text
    assert "Traceback" not in exporter.output()

    # SIGTERM ends it within the grace period.
    assert exporter.proc is not None
    exporter.proc.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert exporter.proc.wait(timeout=15) == 0
    assert time.monotonic() - stopping < 10


def test_a_commit_without_an_answer_is_reported_as_outcome_unknown(
    tmp_path: Path,
    database: str,
    serve: list[Exporter],
) -> None:
    # Items that run once at startup and then not for an hour, and that first round's history
    # on disk before the slow commit: no other write is under way, or meets the fault the
    # timeout marks, while the attestation hangs, so the one write error counted is its own.
    exporter = Exporter(write_config(tmp_path, database, interval="1h"), env=ENV)
    serve.append(exporter)
    exporter.start()
    wait_for(lambda: recorded_states(exporter) >= {"present", "on-call"}, 15, "history", exporter)
    # A deferred trigger runs at COMMIT and outlasts the store's 5s deadline.
    asyncio.run(
        admin_in(
            database,
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(8); RETURN NULL; END $$;"
            " CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON readiness_attestation"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
        )
    )
    response = attest(exporter)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert "outcome unknown" in error and "nothing was recorded" not in error
    assert "GET /api/v1/attestations" in error
    assert write_errors(exporter, "postgresql") == 1


def recorded_states(exporter: Exporter) -> set[str]:
    """The items with a state record in the history."""
    response = httpx.get(
        f"{exporter.url}/api/v1/history",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return {r["item"] for r in response.json()["history"] if r["state"] in STATES}


async def admin_in(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_a_state_file_deleted_under_the_daemon_turns_it_not_ready(
    tmp_path: Path, serve: list[Exporter]
) -> None:
    state = tmp_path / "state.db"
    exporter = Exporter(write_config(tmp_path, f"sqlite:///{state}"), env=ENV)
    serve.append(exporter)
    exporter.start()
    assert attest(exporter).status_code == 201
    state.unlink()
    wait_for(lambda: ready_status(exporter) == 503, 12, "/health/ready 503", exporter)
    response = attest(exporter)
    assert response.status_code == 503, response.text
    assert f"state {state} was deleted while open" in exporter.output()
    assert write_errors(exporter, "sqlite") >= 1
    assert exporter.get("/metrics").status_code == 200


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
            os.fsync(filler.fileno())


def test_a_full_disk_is_named_and_counted(small_disk: Path, serve: list[Exporter]) -> None:
    state = small_disk / "state.db"
    exporter = Exporter(write_config(small_disk.parent, f"sqlite:///{state}"), env=ENV)
    serve.append(exporter)
    exporter.start()
    assert attest(exporter).status_code == 201
    fill(small_disk)
    note = "n" * 1000
    statuses = [attest(exporter, note).status_code for _ in range(50)]
    assert 503 in statuses, statuses
    assert 500 not in statuses
    log = exporter.output()
    assert f"disk full writing state {state}" in log
    assert "cannot rollback" not in log
    assert write_errors(exporter, "sqlite") >= 1
    assert exporter.get("/metrics").status_code == 200


def test_a_second_daemon_on_the_same_file_refuses_to_start(
    tmp_path: Path, serve: list[Exporter]
) -> None:
    state = tmp_path / "state.db"
    config = write_config(tmp_path, f"sqlite:///{state}")
    first = Exporter(config, env=ENV)
    serve.append(first)
    first.start()
    assert first.proc is not None

    second = Exporter(config, env=ENV)
    done = subprocess.run(
        [*second.command], env=second.env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 3, done.stderr
    assert f"state {state} is in use by another readiness-exporter serve" in done.stderr
    assert f"pid {first.proc.pid} on " in done.stderr and " since 20" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout

    # The verbs that only add or read attestations, and check, work beside the daemon.
    done = run_cli("attest", "--config", str(config), "app", "on-call", "--by", "carol")
    assert done.returncode == 0, done.stderr
    done = run_cli("check", "--config", str(config), "--no-serve")
    assert done.returncode == 0, done.stderr
    done = run_cli("report", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert ready_status(first) == 200


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder with a good state file, seen through a read-only bind mount (root ignores file
    modes, not a read-only mount)."""
    source, view = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    done = run_cli(
        "attest",
        "--config",
        str(write_config(source, f"sqlite:///{source}/s.db")),
        "app",
        "on-call",
        "--by",
        "alice",
    )
    assert done.returncode == 0, done.stderr
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(source), str(view)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot make a read-only bind mount here")
    try:
        yield view / "s.db"
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


@pytest.mark.parametrize("damage", ["garbage", "read-only", "directory"])
def test_an_unusable_state_file_is_one_line_and_exit_3_for_every_verb(
    tmp_path: Path, damage: str, request: pytest.FixtureRequest
) -> None:
    if damage == "read-only":
        state = request.getfixturevalue("read_only")
        expected = "read-only"
    elif damage == "garbage":
        state = tmp_path / "state.db"
        state.write_bytes(b"this is not a database\n" * 100)
        expected = "not a SQLite database file"
    else:
        state = tmp_path / "state.db"
        state.mkdir()
        expected = "is a directory"
    config = write_config(tmp_path, f"sqlite:///{state}")
    exporter = Exporter(config, env=ENV)
    for verb in (
        [*exporter.command[3:]],
        ["attest", "--config", str(config), "app", "on-call", "--by", "alice"],
        ["check", "--config", str(config), "--no-serve"],
        ["report", "--config", str(config)],
    ):
        done = subprocess.run(
            [*exporter.command[:3], *verb],
            env=exporter.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 3, (verb, done.stdout, done.stderr)
        assert f"state {state}" in done.stderr and expected in done.stderr, (verb, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout, verb


def test_an_unreachable_postgresql_is_exit_3_naming_it_without_its_password(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(tmp_path, f"postgresql://postgres:${{I13_PG_PW}}@127.0.0.1:{port}/x")
    env = {**os.environ, **ENV, "I13_PG_PW": "pg-password-0123456789"}
    for verb in (["serve"], ["attest", "app", "on-call", "--by", "alice"], ["report"]):
        done = subprocess.run(
            [sys.executable, "-m", "exporter", verb[0], "--config", str(config), *verb[1:]],
            env={**env, "READINESS_LISTEN": f"127.0.0.1:{free_port()}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 3, (verb, done.stderr)
        assert f"state postgresql://127.0.0.1:{port}/x: " in done.stderr, done.stderr
        assert "pg-password" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr + done.stdout


def test_attestations_during_connection_cuts_answer_what_really_happened(
    tmp_path: Path,
    database: str,
    serve: list[Exporter],
) -> None:
    """While the database's connections are cut again and again (a failover), every 201 is in
    the database and every "nothing was recorded" is not; the rest say the outcome is unknown."""
    exporter = Exporter(write_config(tmp_path, database), env=ENV)
    serve.append(exporter)
    exporter.start()
    name = database.rsplit("/", 1)[1]
    stop = threading.Event()

    def cut() -> None:
        while not stop.is_set():
            psql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            stop.wait(0.05)

    cutter = threading.Thread(target=cut, daemon=True)
    cutter.start()
    answers: dict[str, str] = {}
    try:
        for i in range(120):
            response = attest(exporter, note=f"storm-{i}")
            assert response.status_code in (201, 503), response.text
            answers[f"storm-{i}"] = (
                "recorded" if response.status_code == 201 else response.json()["error"]
            )
    finally:
        stop.set()
        cutter.join(10)
    stored = set(
        psql("SELECT note FROM readiness_attestation WHERE note LIKE 'storm-%'", name).split()
    )
    for note, answer in answers.items():
        if answer == "recorded":
            assert note in stored, f"{note} answered 201 but is not in the database"
        elif "nothing was recorded" in answer:
            assert note not in stored, f"{note} answered 'nothing was recorded' but is stored"
        else:
            assert answer.startswith("outcome unknown"), answer
    assert sum(a == "recorded" for a in answers.values()) > 0
