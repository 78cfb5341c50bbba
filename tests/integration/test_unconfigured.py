"""An imported checklist before its placeholders are set, as a new user serves it: no probe
reaches a target the user did not name, nothing passes by accident, and every view names the
variable to set."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.exporter import Exporter, wait_for
from tests.support.servers import HttpTarget

FIXTURE = Path(__file__).parents[1] / "fixtures" / "checklists" / "market-collector.md"
PLACEHOLDERS = ("BASE_URL", "DATABASE_URL", "REDIS_URL", "SERVICE_PROCESS", "LOG_DIR")
PLACEHOLDERS += ("BACKUP_DIR", "HTTPS_HOST", "PROMETHEUS_URL", "SYSTEMD_UNIT")
DEFAULT_HTTP_PORT = 8000
"""The port of the example BASE_URL an imported http probe carries (never probed)."""


def runs(exporter: Exporter, kind: str) -> float:
    """readiness_probe_runs_total of a kind, every result summed."""
    return sum(
        v
        for (name, labels), v in exporter.samples().items()
        if name == "readiness_probe_runs_total" and ("kind", kind) in labels
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PLACEHOLDERS}
    return {**env, **extra}


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI run from `cwd`, where the imported config's state file (./NAME-state.db) goes."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(**env),
        cwd=cwd,
    )


class Decoy:
    """A listener on the example's port that counts the connections reaching it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def decoy() -> Iterator[Decoy | None]:
    """A decoy on 127.0.0.1:8000 when that port is free on this machine (None when not)."""
    try:
        trap = Decoy(DEFAULT_HTTP_PORT)
    except OSError:
        yield None
        return
    try:
        yield trap
    finally:
        trap.close()


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    config = tmp_path / "market.yaml"
    done = cli("import", str(FIXTURE), "-o", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "DATABASE_URL (not set: its items are unconfigured, never run" in done.stderr
    valid = cli("validate", "--config", str(config), cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "13 items are unconfigured (not run) until these are set: DATABASE_URL (4 items)" in (
        valid.stdout
    )
    return config


def test_served_fresh_import_is_not_ready_runs_no_network_probe_and_names_the_variables(
    imported: Path, decoy: Decoy | None
) -> None:
    exporter = Exporter(imported)
    state = f"sqlite:///{imported.parent / 'served.db'}"
    exporter.env = clean_env(READINESS_LISTEN=f"127.0.0.1:{exporter.port}", READINESS_STATE=state)
    exporter.start()
    try:
        # The probes that may run (host, disk) have run: the daemon had its chance.
        wait_for(
            lambda: runs(exporter, "disk"),
            15,
            "the disk probe to run",
            exporter,
        )
        health = exporter.get("/health").json()
        assert health["ready"] is False
        unconfigured = {u["item"]: u["set"] for u in health["unconfigured"]}
        assert unconfigured["health-endpoint-returns-200"] == ["BASE_URL"]
        assert unconfigured["postgresql-running-and-accessible"] == ["DATABASE_URL"]
        assert unconfigured["redis-7-installed"] == ["REDIS_URL"]
        assert all(u["checklist"] == "market-collector" for u in health["unconfigured"])

        items = {
            i["id"]: i
            for s in exporter.get("/status").json()["checklists"][0]["sections"]
            for i in s["items"]
        }
        health_item = items["health-endpoint-returns-200"]
        assert (health_item["passing"], health_item["reason"]) == (False, "unconfigured")
        assert health_item["unconfigured"] == ["BASE_URL"]
        assert "set BASE_URL" in health_item["message"]
        assert health_item["last_run"] is None

        for kind in ("http", "postgres", "redis", "tcp", "tls", "prometheus"):
            assert runs(exporter, kind) == 0, kind
        assert exporter.value(
            "readiness_item_failure_reason",
            item="postgresql-running-and-accessible",
            reason="unconfigured",
        )
        assert exporter.value("readiness_checklist_ready", checklist="market-collector") == 0
        if decoy is not None:
            assert decoy.connections == 0
    finally:
        exporter.stop()


def test_check_and_report_name_the_variable_and_setting_it_makes_the_item_run(
    imported: Path, http_target: HttpTarget
) -> None:
    check = cli(
        "check",
        "--no-serve",
        "--config",
        str(imported),
        "--checklist",
        "market-collector",
        cwd=imported.parent,
    )
    assert check.returncode == 1, check.stderr
    line = next(
        x for x in check.stdout.splitlines() if x.split()[4:5] == ["health-endpoint-returns-200"]
    )
    assert line.startswith("FAIL") and "unconfigured: set BASE_URL" in line
    report = cli("report", "--config", str(imported), "--format", "markdown", cwd=imported.parent)
    assert report.returncode in (0, 1), report.stderr
    row = next(x for x in report.stdout.splitlines() if "`/health` endpoint returns 200" in x)
    assert row.startswith("- [ ]") and "unconfigured: set BASE_URL" in row

    configured = cli(
        "check",
        "--no-serve",
        "--config",
        str(imported),
        "--format",
        "json",
        cwd=imported.parent,
        BASE_URL=http_target.url,
    )
    doc = json.loads(configured.stdout)
    items = {i["id"]: i for s in doc["checklists"][0]["sections"] for i in s["items"]}
    assert items["health-endpoint-returns-200"]["passing"] is True
    assert items["health-endpoint-returns-200"]["facts"]["status"] == 200
    assert items["postgresql-running-and-accessible"]["reason"] == "unconfigured"


def test_import_set_writes_the_value_so_the_item_runs_and_hand_written_rules_stay(
    tmp_path: Path, http_target: HttpTarget
) -> None:
    config = tmp_path / "set.yaml"
    done = cli(
        "import",
        str(FIXTURE),
        "-o",
        str(config),
        "--set",
        f"BASE_URL={http_target.url}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    check = cli("check", "--no-serve", "--config", str(config), "--format", "json", cwd=tmp_path)
    doc = json.loads(check.stdout)
    items = {i["id"]: i for s in doc["checklists"][0]["sections"] for i in s["items"]}
    assert items["health-endpoint-returns-200"]["passing"] is True
    # A hand-written ${VAR} that is not set is still a config error with its line.
    written = tmp_path / "hand.yaml"
    written.write_text(
        "checklists:\n  - name: app\n    sections:\n      - name: ops\n        items:\n"
        "          - id: up\n            title: Up\n"
        "            http: {url: '${NO_SUCH_VAR_I16}/x'}\n"
    )
    invalid = cli("validate", "--config", str(written), cwd=tmp_path)
    assert invalid.returncode == 2
    assert (
        f"{written}:8: item up: environment variable NO_SUCH_VAR_I16 is not set" in invalid.stderr
    )
