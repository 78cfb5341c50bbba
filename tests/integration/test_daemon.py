"""The daemon end to end, as a user runs it: `serve` as a subprocess, scraped over HTTP."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.exporter import Exporter, wait_for
from tests.support.servers import HttpTarget, SilentServer, free_port

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, target: HttpTarget, silent_port: int, closed_port: int) -> Path:
    (tmp_path / "backup.dump").write_bytes(b"x" * 2048)
    config = tmp_path / "readiness.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
  default_interval: 1s
  default_timeout: 2s
checklists:
  - name: app
    title: The app
    sections:
      - name: health
        items:
          - id: health-endpoint
            title: "/health returns 200"
            severity: critical
            http: {{url: "{target.url}/health"}}
            expect: ["status == 200", "json.status == 'ok'"]
          - id: hanging-endpoint
            title: An endpoint that never answers
            severity: info  # always times out: advisory, so readiness follows the others
            timeout: 1s
            http: {{url: "http://127.0.0.1:{silent_port}/health"}}
      - name: security
        items:
          - id: db-port-closed
            title: Database port closed to the world
            tcp: {{host: 127.0.0.1, port: {closed_port}}}
            expect: ["connected == false"]
          - id: backup-present
            title: Backup file present
            file: {{path: "{tmp_path}/*.dump"}}
            expect: ["size > 1KiB"]
""")
    return config


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    server = HttpTarget()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def exporter(tmp_path: Path, target: HttpTarget, silent: SilentServer) -> Iterator[Exporter]:
    proc = Exporter(write_config(tmp_path, target, silent.port, free_port()))
    proc.start()
    yield proc
    if proc.proc is not None:
        proc.stop()


def passing(exporter: Exporter, item: str) -> float | None:
    return exporter.value("readiness_item_passing", checklist="app", item=item)


def test_gauges_follow_the_target_and_survive_a_restart(
    exporter: Exporter, target: HttpTarget
) -> None:
    wait_for(
        lambda: passing(exporter, "health-endpoint") == 1.0, 10, "health-endpoint passing", exporter
    )
    wait_for(
        lambda: passing(exporter, "db-port-closed") == 1.0, 10, "db-port-closed passing", exporter
    )
    wait_for(
        lambda: passing(exporter, "backup-present") == 1.0, 10, "backup-present passing", exporter
    )
    assert (
        exporter.value(
            "readiness_item_info",
            item="health-endpoint",
            kind="http",
            title="/health returns 200",
            section="health",
        )
        == 1.0
    )
    assert exporter.value("readiness_build_info") == 1.0
    assert exporter.value("readiness_config_last_reload_successful") == 1.0

    # Break the target: the item fails within two intervals (1s each) plus the jitter.
    target.stop()
    broken_at = time.monotonic()
    wait_for(
        lambda: passing(exporter, "health-endpoint") == 0.0, 4, "health-endpoint failing", exporter
    )
    assert time.monotonic() - broken_at < 4
    assert (
        exporter.value("readiness_item_failure_reason", item="health-endpoint", reason="connect")
        == 1.0
    )
    assert exporter.value("readiness_checklist_ready", checklist="app") == 0.0
    last_success = exporter.value(
        "readiness_item_last_success_timestamp_seconds", item="health-endpoint"
    )
    assert last_success is not None and last_success > 0

    # Other items keep their schedule meanwhile.
    before = exporter.value("readiness_item_last_run_timestamp_seconds", item="backup-present")
    wait_for(
        lambda: (
            (
                exporter.value("readiness_item_last_run_timestamp_seconds", item="backup-present")
                or 0
            )
            > (before or 0)
        ),
        4,
        "backup-present to run again",
        exporter,
    )

    # Restart the daemon: the last success of the (still broken) item survives.
    assert exporter.stop() == 0
    exporter.start()
    assert (
        exporter.value("readiness_item_last_success_timestamp_seconds", item="health-endpoint")
        == last_success
    )
    wait_for(
        lambda: (
            exporter.value(
                "readiness_item_failure_reason", item="health-endpoint", reason="connect"
            )
            == 1.0
        ),
        5,
        "failing again after restart",
        exporter,
    )

    # Repair the target: the item recovers.
    target.start()
    wait_for(
        lambda: passing(exporter, "health-endpoint") == 1.0,
        5,
        "health-endpoint recovered",
        exporter,
    )
    assert exporter.value("readiness_checklist_ready", checklist="app") == 1.0


def test_a_hanging_probe_times_out_without_delaying_others(exporter: Exporter) -> None:
    wait_for(
        lambda: (
            exporter.value(
                "readiness_item_failure_reason", item="hanging-endpoint", reason="timeout"
            )
            == 1.0
        ),
        8,
        "hanging-endpoint timeout",
        exporter,
    )
    duration = exporter.value("readiness_item_probe_duration_seconds", item="hanging-endpoint")
    assert duration is not None and 0.9 <= duration < 1.9

    # The healthy item beside it keeps running about once a second.
    def runs() -> float:
        return exporter.value("readiness_probe_runs_total", kind="http", result="success") or 0.0

    start = runs()
    wait_for(lambda: runs() - start >= 3, 4.5, "three runs of health-endpoint", exporter)
    assert exporter.value("readiness_probe_runs_total", kind="http", result="timeout") >= 1


def test_status_health_and_landing(exporter: Exporter) -> None:
    wait_for(
        lambda: passing(exporter, "health-endpoint") == 1.0, 10, "health-endpoint passing", exporter
    )
    wait_for(
        lambda: passing(exporter, "backup-present") == 1.0, 10, "backup-present passing", exporter
    )
    status = exporter.get("/status").json()
    [checklist] = status["checklists"]
    items = {i["id"]: i for s in checklist["sections"] for i in s["items"]}
    assert items["health-endpoint"]["passing"] is True
    assert items["health-endpoint"]["facts"]["status"] == 200
    assert items["backup-present"]["facts"]["size"] == 2048
    assert exporter.get("/health/live").status_code == 200
    health = exporter.get("/health").json()
    assert health["status"] == "ok" and health["items"] == 4
    assert "/metrics" in exporter.get("/").text.replace('href="metrics"', "/metrics")
    openmetrics = exporter.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_sigterm_shuts_down_promptly(exporter: Exporter) -> None:
    started = time.monotonic()
    assert exporter.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    assert "daemon_stopped" in exporter.output()


def test_sigint_shuts_down_gracefully_too(exporter: Exporter) -> None:
    """Ctrl-C is a stop like SIGTERM: the daemon stops and the process exits 0, no
    KeyboardInterrupt traceback."""
    assert exporter.stop(signal.SIGINT) == 0
    log = exporter.output()
    assert "daemon_stopped" in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log


def test_a_taken_listen_address_is_one_line_and_exit_3(
    tmp_path: Path, target: HttpTarget, silent: SilentServer
) -> None:
    """The address is bound before serving: taken, it is named in one line, the state is left
    as it was, and the exit code is a runtime error's."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        second = Exporter(write_config(tmp_path, target, silent.port, free_port()), port=port)
        done = subprocess.run(
            second.command, env=second.env, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 3, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: " in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
