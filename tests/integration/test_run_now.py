"""Run now: POST /api/v1/runs over real HTTP against `serve` (every status code, the results,
no overlap with a run in flight), the Run now button in headless Chromium, and `check --url`
asking the running daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.browser import Browser
from tests.support.exporter import Exporter, wait_for
from tests.support.servers import HttpTarget, free_port

pytestmark = pytest.mark.slow

TOKENS = {
    "RN_ATTEST_TOKEN": "attest-secret-0123456789abcdef",
    "RN_READ_TOKEN": "read-secret-0123456789abcdef",
}
HEALTH_TOKEN = "health-secret-0123456789abcdef"
ATTEST = {"Authorization": f"Bearer {TOKENS['RN_ATTEST_TOKEN']}"}
READ = {"Authorization": f"Bearer {TOKENS['RN_READ_TOKEN']}"}

CONFIG = """
exporter:
  state: "sqlite:///{dir}/state.db"
  default_interval: 1h
  api_tokens:
    - {{name: oncall, token_env: RN_ATTEST_TOKEN, roles: [attest]}}
    - {{name: grafana, token_env: RN_READ_TOKEN, roles: [read]}}
checklists:
  - name: app
    sections:
      - name: web
        items:
          - id: health
            title: Health answers
            severity: critical
            http:
              url: "${{RN_TARGET}}/health"
              headers: {{Authorization: "Bearer ${{RN_HEALTH_TOKEN}}"}}
          - id: slow-job
            title: Slow check
            command: {{argv: [sh, -c, "echo run >> {dir}/runs.log; sleep 1.5"]}}
      - name: ops
        items:
          - id: rota
            title: On-call rotation
            manual: {{}}
          - id: api
            title: API answers
            http: {{url: "${{RN_UNSET_BASE:?http://127.0.0.1:8000}}/api"}}
          - id: flag-file
            title: Flag file present
            file: {{path: "{dir}/flag"}}
"""


@pytest.fixture(scope="module")
def target() -> Iterator[HttpTarget]:
    server = HttpTarget()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, target: HttpTarget) -> Iterator[Exporter]:
    directory = tmp_path_factory.mktemp("runs")
    config = directory / "readiness.yaml"
    config.write_text(CONFIG.format(dir=directory, target=target.url))
    # Set where the daemon runs only: `check --url` on a CI host without them still works.
    daemon_only = {"RN_TARGET": target.url, "RN_HEALTH_TOKEN": HEALTH_TOKEN}
    exporter = Exporter(config, env={**TOKENS, **daemon_only})
    exporter.env.pop("RN_UNSET_BASE", None)
    exporter.start()
    # The first scheduled runs are done: from now on only run-now requests run the items.
    wait_for(lambda: item_status(exporter, "slow-job")["last_run"], 15, "the first runs", exporter)
    yield exporter
    if exporter.proc is not None:
        exporter.stop()


def runs_logged(exporter: Exporter) -> int:
    log = exporter.config.parent / "runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def post(exporter: Exporter, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{exporter.url}/api/v1/runs",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **(ATTEST if headers is None else headers)},
        timeout=30,
    )


def item_status(exporter: Exporter, item: str) -> dict[str, object]:
    doc = exporter.get("/status", headers=READ).json()
    return next(i for s in doc["checklists"][0]["sections"] for i in s["items"] if i["id"] == item)


def test_run_now_answers_every_status_code(daemon: Exporter) -> None:
    assert post(daemon, {"checklist": "app"}, headers={}).status_code == 401
    assert post(daemon, {"checklist": "app"}, headers=READ).status_code == 403
    assert post(daemon, {"checklist": "nope"}).status_code == 404
    assert post(daemon, {"checklist": "app", "section": "nope"}).status_code == 404
    assert post(daemon, {"checklist": "app", "item": "nope"}).status_code == 404
    both = post(daemon, {"checklist": "app", "section": "web", "item": "health"})
    assert both.status_code == 422 and "section or item, not both" in both.text
    manual = post(daemon, {"checklist": "app", "item": "rota"})
    assert manual.status_code == 422 and "manual: attested by a person" in manual.text
    unconfigured = post(daemon, {"checklist": "app", "item": "api"})
    assert (
        unconfigured.status_code == 422 and "unconfigured: set RN_UNSET_BASE" in unconfigured.text
    )
    assert post(daemon, ["app"]).status_code == 422
    foreign = post(
        daemon, {"checklist": "app"}, headers={**ATTEST, "Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403


def test_an_item_runs_at_once_and_the_answer_carries_its_result(daemon: Exporter) -> None:
    flag = daemon.config.parent / "flag"
    assert item_status(daemon, "flag-file")["passing"] is False
    flag.write_text("ready")
    answer = post(daemon, {"checklist": "app", "item": "flag-file"})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    (result,) = doc["results"]
    assert (result["id"], result["section"], result["passing"]) == ("flag-file", "ops", True)
    assert result["facts"]["exists"] is True
    # Recorded as any run: /status and /metrics show it.
    assert item_status(daemon, "flag-file")["passing"] is True
    assert daemon.value("readiness_item_passing", item="flag-file") == 1


def test_a_section_runs_its_probed_items_and_says_what_it_left_out(daemon: Exporter) -> None:
    answer = post(daemon, {"checklist": "app", "section": "ops"})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert [r["id"] for r in doc["results"]] == ["flag-file"]
    assert {s["item"]: s["why"] for s in doc["skipped"]} == {
        "rota": "manual: attested by a person, not run",
        "api": "unconfigured: set RN_UNSET_BASE",
    }
    assert doc["checklist"] == "app" and doc["ready"] is False


def test_run_now_never_overlaps_a_run_of_the_same_item(daemon: Exporter) -> None:
    before = runs_logged(daemon)
    answers: list[httpx.Response] = []

    def ask() -> None:
        answers.append(post(daemon, {"checklist": "app", "item": "slow-job"}))

    askers = [threading.Thread(target=ask) for _ in range(3)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(30)
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    # The three requests shared one run (the command logs each of its runs).
    assert runs_logged(daemon) == before + 1
    assert len({a.json()["results"][0]["last_run"] for a in answers}) == 1


def test_the_run_now_button_runs_the_item_in_chromium(daemon: Exporter, tmp_path: Path) -> None:
    (daemon.config.parent / "flag").unlink(missing_ok=True)
    post(daemon, {"checklist": "app", "item": "flag-file"})
    assert item_status(daemon, "flag-file")["passing"] is False
    (daemon.config.parent / "flag").write_text("back")
    browser = Browser(tmp_path / "chromium-profile")
    try:
        token = TOKENS["RN_ATTEST_TOKEN"]
        browser.goto(f"http://oncall:{token}@127.0.0.1:{daemon.port}/status")
        assert browser.wait_for("document.querySelectorAll('li.item').length") == 5
        # Probed items and sections have the button; manual and unconfigured items do not.
        forms = browser.evaluate(
            "[...document.querySelectorAll('form.run')]"
            ".map(f => f.dataset.item || 'section:' + f.dataset.section)"
        )
        assert forms == ["section:web", "health", "slow-job", "section:ops", "flag-file"]
        browser.evaluate(
            "document.querySelector(\"form.run[data-item='flag-file']\").requestSubmit()"
        )
        outcome = browser.wait_for(
            "(o => !['', 'running…'].includes(o.textContent) && o.textContent)"
            "(document.querySelector(\"form.run[data-item='flag-file'] output\"))"
        )
    finally:
        browser.close()
    assert outcome == "passing"
    assert item_status(daemon, "flag-file")["passing"] is True


def check_url(daemon: Exporter, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RN_")}
    return subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config", str(daemon.config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "junit"])
def test_check_url_asks_the_daemon_and_exits_by_its_verdict(daemon: Exporter, fmt: str) -> None:
    before = runs_logged(daemon)
    token = {"READINESS_TOKEN": TOKENS["RN_ATTEST_TOKEN"]}
    done = check_url(daemon, "--url", daemon.url, "--format", fmt, **token)
    # The manual item is not attested and the unconfigured one cannot run: not ready.
    assert done.returncode == 1, done.stderr
    assert runs_logged(daemon) == before + 1  # the daemon ran the checklist, not this process
    # RN_TARGET and RN_HEALTH_TOKEN are set on the daemon only: no error for them here, and
    # the daemon's secret never shows.
    assert "RN_TARGET" not in done.stderr + done.stdout
    assert HEALTH_TOKEN not in done.stderr + done.stdout
    if fmt == "table":
        assert "app: 3/5 passing (score 0.60), NOT READY" in done.stdout
        assert "unconfigured: set RN_UNSET_BASE" in done.stdout
    elif fmt == "json":
        assert json.loads(done.stdout)["ready"] is False
    elif fmt == "markdown":
        assert "3 of 5 items passing, not ready" in done.stdout
    else:
        assert 'type="not_ready"' in done.stdout


def test_check_url_without_a_usable_token_or_daemon_says_so(daemon: Exporter) -> None:
    no_token = check_url(daemon, "--url", daemon.url)
    assert no_token.returncode == 2
    assert "HTTP 401" in no_token.stderr and "READINESS_TOKEN" in no_token.stderr
    read_only = check_url(
        daemon, "--url", daemon.url, "--token-env", "MINE", MINE=TOKENS["RN_READ_TOKEN"]
    )
    assert read_only.returncode == 2 and "attest role" in read_only.stderr
    nowhere = check_url(daemon, "--url", f"http://127.0.0.1:{free_port()}", READINESS_TOKEN="x")
    assert nowhere.returncode == 3 and "cannot reach the daemon" in nowhere.stderr
