"""What a crash may lose (docs/durability.md): `serve` killed with SIGKILL while a batch of
probe results waits for its transaction loses at most that batch; never an attestation that
was answered 201, never a last success that /metrics already showed."""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import post_attestation
from tests.support.exporter import Exporter, wait_for

pytestmark = pytest.mark.slow

ITEMS = 200
"""`tcp` items every second: ~200 results a second, so a batch is always waiting."""
TOKEN = "attest-secret-0123456789abcdef"


@pytest.fixture
def listening() -> Iterator[int]:
    """A port that accepts connections and closes them."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    thread.join(timeout=5)


def write_config(tmp_path: Path, port: int) -> Path:
    items = "\n".join(
        f"          - {{id: port-{n}, title: Port {n}, tcp: {{host: 127.0.0.1, port: {port}}}}}"
        for n in range(ITEMS)
    )
    config = tmp_path / "readiness.yaml"
    config.write_text(f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
  default_interval: 1s
  default_timeout: 2s
  api_tokens:
    - {{name: oncall, token_env: DURABILITY_ATTEST_TOKEN, roles: [attest]}}
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - {{id: signoff, title: Signed off, manual: {{}}}}
{items}
""")
    return config


def served_last_success(exporter: Exporter) -> dict[str, float]:
    return {
        dict(labels)["item"]: value
        for (name, labels), value in exporter.samples().items()
        if name == "readiness_item_last_success_timestamp_seconds"
    }


def stored(state: Path) -> tuple[dict[str, float], list[tuple[str, str, str]]]:
    """Each item's last success and the attestations, as the file holds them after the kill."""
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        successes = dict(
            db.execute(
                "SELECT item, last_success FROM item_state WHERE last_success IS NOT NULL"
            ).fetchall()
        )
        attestations = db.execute("SELECT item, by_name, note FROM attestation").fetchall()
    finally:
        db.close()
    return successes, attestations


def run_and_kill(config: Path, note: str) -> dict[str, float]:
    """Starts `serve`, attests `signoff` with `note` once every item passed, scrapes the last
    successes and kills the daemon with SIGKILL at once; returns what the scrape showed."""
    exporter = Exporter(config, env={"DURABILITY_ATTEST_TOKEN": TOKEN})
    exporter.start()
    wait_for(
        lambda: len(served_last_success(exporter)) >= ITEMS, 20, "every item to pass", exporter
    )
    response = post_attestation(exporter, TOKEN, item="signoff", by="alice", note=note)
    assert response.status_code == 201, response.text
    served = served_last_success(exporter)
    # Runs go on between the scrape and the kill: a batch is waiting for its commit.
    assert exporter.proc is not None
    exporter.proc.send_signal(signal.SIGKILL)
    assert exporter.proc.wait(timeout=10) == -signal.SIGKILL
    exporter.proc = None
    return served


def test_sigkill_mid_batch_keeps_every_attestation_and_every_served_last_success(
    tmp_path: Path, listening: int
) -> None:
    config = write_config(tmp_path, listening)
    attested: list[tuple[str, str, str]] = []
    for round_ in range(3):
        served = run_and_kill(config, f"round {round_}")
        attested.append(("signoff", "alice", f"round {round_}"))

        successes, attestations = stored(tmp_path / "state.db")
        assert attestations == attested
        behind = {
            item: (at, successes.get(item))
            for item, at in served.items()
            if item != "signoff" and (successes.get(item) or 0) < at
        }
        assert not behind, f"last successes served but lost: {behind}"
