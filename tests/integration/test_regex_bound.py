"""A user's regex cannot wedge the daemon: `body matches '(a+)+b'` against a real target that
returns 64 KiB of `a` (Python's backtracking `re` spun on it forever, on the event loop)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support.exporter import Exporter, wait_for
from tests.support.servers import QuietHandler

BODY = b"a" * 65536


class _Aaaa(QuietHandler):
    def do_GET(self) -> None:
        self.reply(200, BODY, "text/plain")


@pytest.fixture
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Aaaa)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def exporter(tmp_path: Path, target: str) -> Iterator[Exporter]:
    config = tmp_path / "readiness.yaml"
    config.write_text(
        f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
checklists:
  - name: app
    sections:
      - name: web
        items:
          - id: catastrophic
            title: A regex that backtracks forever in Python's re
            interval: 1s
            http: {{url: "{target}"}}
            expect: ["body matches '(a+)+b'"]
"""
    )
    daemon = Exporter(config)
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()  # the old code ignored SIGTERM: do not leave it spinning
            daemon.proc.wait(timeout=10)


def _answers_quickly(exporter: Exporter, path: str) -> bool:
    started = time.monotonic()
    try:
        response = httpx.get(f"{exporter.url}{path}", timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and time.monotonic() - started < 1.0


def test_catastrophic_regex_neither_starves_the_loop_nor_blocks_sigterm(
    exporter: Exporter,
) -> None:
    exporter.start()
    # A result shows on /metrics once its batch is committed (within 100 ms of the run).
    wait_for(
        lambda: exporter.value(
            "readiness_item_failure_reason", item="catastrophic", reason="condition"
        ),
        10,
        "the item to have been judged",
        exporter,
    )
    runs = exporter.value("readiness_probe_runs_total", kind="http", result="failure")
    assert runs is not None and runs >= 1
    assert exporter.value("readiness_item_passing", item="catastrophic") == 0
    # Over three more runs of the item (every second), the daemon keeps answering at once.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert _answers_quickly(exporter, "/health/live")
        assert _answers_quickly(exporter, "/metrics")
    assert exporter.value("readiness_probe_runs_total", kind="http", result="failure") > runs
    assert exporter.proc is not None
    started = time.monotonic()
    exporter.proc.send_signal(signal.SIGTERM)
    try:
        code = exporter.proc.wait(timeout=12)  # the daemon's graceful shutdown is 10 s
    except subprocess.TimeoutExpired:
        pytest.fail("SIGTERM did not end the daemon within its grace period")
    assert code == 0
    assert time.monotonic() - started < 12
