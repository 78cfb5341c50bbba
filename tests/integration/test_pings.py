"""Job pings over real HTTP against `serve`: the `run` wrapper around `true`, `false` and a
command that hangs past its item's timeout; the item's state, evidence and lapse follow; the
API's codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.exporter import Exporter, wait_for
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

TOKENS = {
    "PG_ATTEST_TOKEN": "attest-secret-0123456789abcdef",
    "PG_READ_TOKEN": "read-secret-0123456789abcdef",
}
ATTEST = {"Authorization": f"Bearer {TOKENS['PG_ATTEST_TOKEN']}"}
SECRET = TOKENS["PG_READ_TOKEN"]
"""A secret of the config (a token's value): a job that prints it must not show it."""

CONFIG = """
exporter:
  state: "sqlite:///{dir}/state.db"
  api_tokens:
    - {{name: cron, token_env: PG_ATTEST_TOKEN, roles: [attest]}}
    - {{name: grafana, token_env: PG_READ_TOKEN, roles: [read]}}
checklists:
  - name: jobs
    sections:
      - name: nightly
        items:
          - id: backup
            title: Backups run
            every: 1d
            ping: {{}}
          - id: export
            title: Scheduled export
            timeout: 2s
            ping: {{}}
          - id: short
            title: Runs every few seconds
            every: 2s
            ping: {{}}
          - id: disk
            title: Disk has room
            disk: {{path: /}}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    directory = tmp_path_factory.mktemp("pings")
    config = directory / "readiness.yaml"
    config.write_text(CONFIG.format(dir=directory))
    exporter = Exporter(config, env=TOKENS)
    exporter.start()
    yield exporter
    if exporter.proc is not None:
        exporter.stop()


def run(
    daemon: Exporter, item: str, *command: str, token: str | None = TOKENS["PG_ATTEST_TOKEN"]
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "READINESS_TOKEN"}
    if token is not None:
        env["READINESS_TOKEN"] = token
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "run",
            "--url",
            daemon.url,
            "jobs",
            item,
            "--",
            *command,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(job: subprocess.Popen[str]) -> int:
    job.communicate(timeout=60)
    return job.returncode


def item(daemon: Exporter, ident: str) -> dict[str, object]:
    doc = daemon.get("/status", headers={"Authorization": f"Bearer {TOKENS['PG_READ_TOKEN']}"})
    return next(
        i for s in doc.json()["checklists"][0]["sections"] for i in s["items"] if i["id"] == ident
    )


def test_the_wrapper_around_true_reports_success_and_passes_its_output_through(
    daemon: Exporter,
) -> None:
    job = run(daemon, "backup", "sh", "-c", "echo dumped 42 tables; true")
    out, err = job.communicate(timeout=60)
    assert job.returncode == 0, err
    assert out == "dumped 42 tables\n" and err == ""
    backup = item(daemon, "backup")
    assert (backup["passing"], backup["reason"]) == (True, "ok")
    facts = backup["facts"]
    assert isinstance(facts, dict)
    assert facts["status"] == "success" and facts["exit_code"] == 0
    assert facts["output"] == "dumped 42 tables\n"
    assert backup["last_success"] is not None
    assert daemon.value("readiness_item_passing", item="backup") == 1
    # The log says which token reported each ping (the audit trail), and never the output.
    lines = [line for line in daemon.log.read_text().splitlines() if line.startswith("{")]
    events = [e for e in map(json.loads, lines) if e["event"] == "ping"]
    assert {(e["item"], e["status"], e["token"]) for e in events} >= {
        ("backup", "start", "cron"),
        ("backup", "success", "cron"),
    }
    assert "dumped 42 tables" not in daemon.log.read_text()
    assert daemon.value("readiness_item_lapsed", item="backup") == 0


def test_the_wrapper_around_false_fails_the_item_at_once_with_its_code_and_output(
    daemon: Exporter,
) -> None:
    job = run(
        daemon,
        "backup",
        "sh",
        "-c",
        f"echo pg_dump: token {SECRET} password=hunter2 rejected >&2; exit 3",
    )
    _, err = job.communicate(timeout=60)
    assert job.returncode == 3, err  # the job's code is the wrapper's
    backup = item(daemon, "backup")
    assert (backup["passing"], backup["reason"]) == (False, "condition")
    assert backup["failed"] == ["exit_code == 0 (got 3)"]
    facts = backup["facts"]
    assert isinstance(facts, dict)
    assert "rejected" in str(facts["output"]) and SECRET not in json.dumps(backup)
    assert "hunter2" not in json.dumps(backup)
    assert daemon.value("readiness_item_failure_reason", item="backup", reason="condition") == 1
    # `false` itself, and a command that cannot start (127), fail the same way.
    assert finish(run(daemon, "backup", "false")) == 1
    missing = run(daemon, "backup", "/no/such/job")
    _, err = missing.communicate(timeout=60)
    assert missing.returncode == 127
    assert "cannot run" in str(item(daemon, "backup")["facts"])


def test_a_run_that_hangs_past_its_timeout_fails_as_timeout(daemon: Exporter) -> None:
    job = run(daemon, "export", "sleep", "30")
    try:
        wait_for(lambda: "running_since" in item(daemon, "export"), 15, "the start", daemon)
        wait_for(lambda: item(daemon, "export")["reason"] == "timeout", 15, "the timeout", daemon)
        assert "running_since" not in item(daemon, "export")  # timed out: no longer waited for
        export = item(daemon, "export")
        assert export["passing"] is False
        assert "sent no success or fail within 2s" in str(export["message"])
    finally:
        job.send_signal(signal.SIGTERM)
        job.communicate(timeout=30)
    # Stopping the wrapper stopped the job, which reports as killed by SIGTERM (128 + 15).
    assert job.returncode == 143
    export = item(daemon, "export")
    assert (export["reason"], export["failed"]) == ("condition", ["exit_code == 0 (got 143)"])


def test_a_recurring_ping_item_lapses_without_a_success(daemon: Exporter) -> None:
    assert finish(run(daemon, "short", "true")) == 0
    assert item(daemon, "short")["lapsed"] is False
    time.sleep(2.5)  # every: 2s, no grace
    short = item(daemon, "short")
    assert short["lapsed"] is True
    assert daemon.value("readiness_item_lapsed", item="short") == 1


def test_the_ping_api_answers_its_codes(daemon: Exporter) -> None:
    def ping(body: object, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            f"{daemon.url}/api/v1/pings",
            content=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                **(ATTEST if headers is None else headers),
            },
            timeout=10,
        )

    good = {"checklist": "jobs", "item": "backup", "status": "success"}
    assert ping(good, headers={}).status_code == 401
    read = {"Authorization": f"Bearer {TOKENS['PG_READ_TOKEN']}"}
    assert ping(good, headers=read).status_code == 403
    assert ping({**good, "item": "nope"}).status_code == 404
    not_ping = ping({**good, "item": "disk"})
    assert not_ping.status_code == 422 and "only ping items take pings" in not_ping.text
    assert ping({**good, "status": "done"}).status_code == 422
    assert ping({**good, "exit_code": "0"}).status_code == 422
    assert ping(good, headers={**ATTEST, "Origin": "http://evil.example"}).status_code == 403
    attested = httpx.post(
        f"{daemon.url}/api/v1/attestations",
        json={"checklist": "jobs", "item": "backup", "by": "alice"},
        headers=ATTEST,
        timeout=10,
    )
    assert attested.status_code == 422 and "its job reports in" in attested.text
    assert ping({**good, "status": "start"}).status_code == 202
    done = ping({**good, "exit_code": 0, "duration": 12, "output": "x" * 10_000})
    assert done.status_code == 201 and done.json()["passing"] is True
    output = item(daemon, "backup")["facts"]
    assert isinstance(output, dict) and len(str(output["output"]).encode()) <= 4096 + 3


def test_the_job_runs_even_when_the_daemon_is_out_of_reach(daemon: Exporter) -> None:
    job = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "run",
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "jobs",
            "backup",
            "--",
            "sh",
            "-c",
            "echo still ran; exit 4",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert job.returncode == 4 and job.stdout == "still ran\n"
    assert job.stderr.count("run: not reported:") == 2


@pytest.mark.parametrize(
    ("path", "body", "ident"),
    [
        ("/api/v1/pings", {"checklist": "jobs", "item": "export", "status": "fail"}, "export"),
        ("/api/v1/runs", {"checklist": "jobs", "item": "disk"}, "disk"),
    ],
    ids=["pings", "runs"],
)
def test_a_foreign_origin_or_a_form_changes_nothing(
    daemon: Exporter, path: str, body: dict[str, str], ident: str
) -> None:
    """Pings and run now are refused from another site exactly as attestations are, with a
    valid token (a browser's cached login) and whatever the body's type."""
    before = item(daemon, ident)
    url, content = f"{daemon.url}{path}", json.dumps(body)
    json_type = {"Content-Type": "application/json"}
    refused = [
        ({"Origin": "http://evil.example", **json_type}, 403),
        ({"Origin": "null", **json_type}, 403),
        ({"Origin": f"http://127.0.0.1:{daemon.port + 1}", **json_type}, 403),
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, 403),
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ]
    for headers, code in refused:
        answer = httpx.post(url, content=content, headers={**ATTEST, **headers}, timeout=30)
        assert answer.status_code == code, (headers, answer.text)
    read = {"Authorization": f"Bearer {TOKENS['PG_READ_TOKEN']}", **json_type}
    assert httpx.post(url, content=content, headers=read, timeout=30).status_code == 403
    after = item(daemon, ident)
    assert (after["last_run"], after["reason"]) == (before["last_run"], before["reason"])
    # The same request from our own page's origin goes through.
    own = {"Origin": daemon.url, **json_type}
    answer = httpx.post(url, content=content, headers={**ATTEST, **own}, timeout=30)
    assert answer.status_code in (200, 201), answer.text
