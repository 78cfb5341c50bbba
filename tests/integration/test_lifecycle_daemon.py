"""The lifecycle as users meet it: attestations from the CLI and the API survive `kill -9`,
a running daemon shows a CLI attestation at its next scrape, and reloads add, rename,
reschedule and remove items while kept items keep their history."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import post_attestation
from tests.support.cli import run_cli
from tests.support.exporter import Exporter, wait_for
from tests.support.servers import HttpTarget

pytestmark = pytest.mark.slow

TOKENS = {
    "I4_ATTEST_TOKEN": "attest-secret-0123456789abcdef",
    "I4_ADMIN_TOKEN": "admin-secret-0123456789abcdef",
}
ATTEST = {"Authorization": f"Bearer {TOKENS['I4_ATTEST_TOKEN']}"}
ADMIN = {"Authorization": f"Bearer {TOKENS['I4_ADMIN_TOKEN']}"}


def write_config(path: Path, items: str) -> Path:
    path.write_text(f"""
exporter:
  state: "sqlite:///{path.parent}/state.db"
  default_interval: 1s
  api_tokens:
    - {{name: oncall, token_env: I4_ATTEST_TOKEN, roles: [attest]}}
    - {{name: ops, token_env: I4_ADMIN_TOKEN, roles: [admin]}}
checklists:
  - name: app
    sections:
      - name: ops
        items:
{items}
""")
    return path


def manual(item_id: str, extra: str = "every: 1d") -> str:
    return f"""          - id: {item_id}
            title: {item_id}
            manual: {{}}
            {extra}
"""


def probed(item_id: str, url: str, extra: str = "every: 1d") -> str:
    return f"""          - id: {item_id}
            title: {item_id}
            {extra}
            http: {{url: "{url}/health"}}
"""


@pytest.fixture
def started() -> Iterator[list[Exporter]]:
    """Exporters a test starts; each still running at the end is stopped."""
    procs: list[Exporter] = []
    yield procs
    for proc in procs:
        if proc.proc is not None:
            proc.stop(signal.SIGKILL)


def attest_cli(config: Path, item: str, by: str) -> subprocess.CompletedProcess[str]:
    return run_cli("attest", "--config", str(config), "app", item, "--by", by, "--note", "cli")


def test_kill_9_loses_nothing(
    tmp_path: Path, http_target: HttpTarget, started: list[Exporter]
) -> None:
    config = write_config(
        tmp_path / "readiness.yaml", manual("on-call") + probed("backups", http_target.url)
    )
    exporter = Exporter(config, env=TOKENS)
    started.append(exporter)
    exporter.start()

    def value(name: str, item: str) -> float | None:
        return exporter.value(name, item=item)

    wait_for(lambda: value("readiness_item_passing", "backups") == 1.0, 10, "backups", exporter)
    http_target.stop()
    wait_for(lambda: value("readiness_item_passing", "backups") == 0.0, 10, "failing", exporter)
    before = {
        (name, item): value(name, item)
        for name in (
            "readiness_item_last_success_timestamp_seconds",
            "readiness_item_due_timestamp_seconds",
        )
        for item in ("backups", "on-call")
    }
    response = post_attestation(
        exporter, TOKENS["I4_ATTEST_TOKEN"], item="on-call", by="alice", note="rota checked"
    )
    assert response.status_code == 201, response.text
    # The 201 promises the attestation is on disk: kill at once, no chance to flush.
    exporter.stop(signal.SIGKILL)

    exporter.start()
    attested = response.json()
    history = exporter.get("/api/v1/attestations?item=on-call", headers=ATTEST).json()
    assert history["attestations"] == [attested]
    assert value("readiness_item_passing", "on-call") == 1.0
    at = value("readiness_item_last_success_timestamp_seconds", "on-call")
    assert at is not None and at > 0
    assert value("readiness_item_due_timestamp_seconds", "on-call") == at + 86400
    # The probed item's success and due time, hence its lapse clock, carry on from before.
    for item in ("backups",):
        for name in (
            "readiness_item_last_success_timestamp_seconds",
            "readiness_item_due_timestamp_seconds",
        ):
            assert value(name, item) == before[(name, item)], (name, item)
    assert before[("readiness_item_due_timestamp_seconds", "on-call")] != at + 86400


def test_the_cli_attests_with_or_without_a_running_daemon(
    tmp_path: Path, started: list[Exporter]
) -> None:
    config = write_config(
        tmp_path / "readiness.yaml", manual("on-call") + manual("signoff", extra="")
    )
    done = attest_cli(config, "on-call", "alice")
    assert done.returncode == 0, done.stderr
    assert "attested app/on-call by alice" in done.stdout

    exporter = Exporter(config, env=TOKENS)
    started.append(exporter)
    exporter.start()
    assert exporter.value("readiness_item_passing", item="on-call") == 1.0
    assert exporter.value("readiness_item_passing", item="signoff") == 0.0

    done = attest_cli(config, "signoff", "bob")
    assert done.returncode == 0, done.stderr
    # The very next scrape shows what another process wrote.
    assert exporter.value("readiness_item_passing", item="signoff") == 1.0
    history = exporter.get("/api/v1/attestations", headers=ATTEST).json()["attestations"]
    assert [(a["item"], a["by"], a["token"]) for a in history] == [
        ("signoff", "bob", None),
        ("on-call", "alice", None),
    ]

    wrong = attest_cli(config, "nope", "bob")
    assert wrong.returncode == 2
    assert "has no item 'nope'" in wrong.stderr


def test_reload_keeps_a_broken_config_out_and_applies_a_good_one(
    tmp_path: Path, http_target: HttpTarget, started: list[Exporter]
) -> None:
    path = tmp_path / "readiness.yaml"
    config = write_config(
        path,
        manual("signoff", extra="")
        + probed("health", http_target.url, "interval: 1h")
        + probed("old-name", http_target.url, "every: 1d\n            interval: 1h")
        + probed("removed", http_target.url),
    )
    exporter = Exporter(config, env=TOKENS)
    started.append(exporter)
    exporter.start()
    wait_for(
        lambda: (
            exporter.value("readiness_item_passing", item="removed") == 1.0
            and exporter.value("readiness_item_passing", item="old-name") == 1.0
        ),
        10,
        "first runs",
        exporter,
    )
    attested = post_attestation(exporter, TOKENS["I4_ATTEST_TOKEN"], item="signoff", by="alice")
    assert attested.status_code == 201
    health_run = exporter.value("readiness_item_last_run_timestamp_seconds", item="health")
    old_success = exporter.value("readiness_item_last_success_timestamp_seconds", item="old-name")

    # A broken file: the old config keeps running, the failure shows, every error is logged.
    good = path.read_text()
    path.write_text(good.replace("manual: {}", "manual: {}\n            severity: urgent"))
    assert exporter.proc is not None
    exporter.proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: exporter.value("readiness_config_last_reload_successful") == 0.0,
        10,
        "the failed reload to show",
        exporter,
    )
    assert exporter.value("readiness_item_passing", item="removed") == 1.0
    assert "config_reload_failed" in exporter.output() and "severity" in exporter.output()
    response = httpx.post(f"{exporter.url}/-/reload", headers=ADMIN, timeout=5)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert f"{path}:" in error and "item signoff" in error

    # A good file: rename one item, remove another, reschedule a third (1h -> 1s).
    write_config(
        path,
        manual("signoff", extra="")
        + probed("health", http_target.url, "interval: 1s")
        + probed("new-name", http_target.url),
    )
    response = httpx.post(f"{exporter.url}/-/reload", headers=ADMIN, timeout=5)
    assert response.status_code == 200, response.text
    samples = exporter.samples()
    items = {
        dict(labels).get("item") for (name, labels) in samples if name.startswith("readiness_")
    }
    assert "removed" not in items and "old-name" not in items and "new-name" in items
    assert samples[("readiness_config_last_reload_successful", frozenset())] == 1.0
    assert exporter.value("readiness_item_passing", item="signoff") == 1.0
    wait_for(
        lambda: (
            (exporter.value("readiness_item_last_run_timestamp_seconds", item="health") or 0)
            > (health_run or 0)
        ),
        5,
        "the rescheduled item to run on its new interval",
        exporter,
    )
    wait_for(
        lambda: exporter.value("readiness_item_passing", item="new-name") == 1.0,
        5,
        "the renamed item to run",
        exporter,
    )

    # Renaming back restores the history the old name kept (the target is down, so a run
    # right after the reload cannot move the last success).
    http_target.stop()
    write_config(
        path,
        manual("signoff", extra="")
        + probed("health", http_target.url, "interval: 1s")
        + probed("old-name", http_target.url, "every: 1d\n            interval: 1h"),
    )
    assert httpx.post(f"{exporter.url}/-/reload", headers=ADMIN, timeout=5).status_code == 200
    assert (
        exporter.value("readiness_item_last_success_timestamp_seconds", item="old-name")
        == old_success
    )


def test_check_runs_without_the_api_token_secrets(tmp_path: Path) -> None:
    """Tokens matter to `serve` only: a CI job running `check` has no reason to hold them."""
    config = write_config(tmp_path / "readiness.yaml", manual("on-call"))
    done = run_cli("check", "--no-serve", "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert "not_attested" in done.stdout
