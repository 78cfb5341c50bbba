"""Waivers over real HTTP against `serve`: asked for with an attest token, refused to the token
that asked (403), approved by another admin; a waived item leaves the score and readiness while
it keeps running; it counts again when it expires or is revoked; the CLI verbs; and two replicas
on one PostgreSQL agreeing on a waiver made through either."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.results import Attestation, Waiver
from exporter.state.sqlite import SqliteStore
from tests.support.exporter import Exporter, wait_for

TOKENS = {
    "I17_ONCALL_TOKEN": "oncall-secret-0123456789abcdef",
    "I17_LEAD_TOKEN": "lead-secret-0123456789abcdef01",
    "I17_OPS_TOKEN": "ops-secret-0123456789abcdef012",
}
ONCALL, LEAD, OPS = (f"Bearer {t}" for t in TOKENS.values())


def write_config(directory: Path, state: str, extra: str = "") -> Path:
    config = directory / "readiness.yaml"
    config.write_text(
        f"""
exporter:
  state: "{state}"
  default_interval: 1s
{extra}
  api_tokens:
    - {{name: oncall, token_env: I17_ONCALL_TOKEN, roles: [attest]}}
    - {{name: lead, token_env: I17_LEAD_TOKEN, roles: [admin]}}
    - {{name: ops, token_env: I17_OPS_TOKEN, roles: [admin]}}
checklists:
  - name: app
    sections:
      - name: infra
        items:
          - id: present
            title: A file that is there
            file: {{path: "{config}"}}
          - id: k8s-probes
            title: Kubernetes probes (if using Kubernetes)
            severity: critical
            file: {{path: "{directory}/absent"}}
""".replace("{config}", str(directory / "readiness.yaml"))
    )
    return config


def api(exporter: Exporter, method: str, path: str, token: str, **body: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{exporter.url}{path}",
        json=body or None,
        headers={"Authorization": token},
        timeout=15,
    )


def waiver_request(expires: object = "30d") -> dict[str, Any]:
    return {
        "checklist": "app",
        "item": "k8s-probes",
        "reason": "runs on VMs, no Kubernetes",
        "by": "alice",
        "expires": expires,
    }


def readiness(exporter: Exporter) -> tuple[float | None, float | None, float | None]:
    return (
        exporter.value("readiness_checklist_ready", checklist="app"),
        exporter.value("readiness_checklist_score_ratio", checklist="app"),
        exporter.value("readiness_item_waived", item="k8s-probes"),
    )


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    running = Exporter(write_config(tmp_path, f"sqlite:///{tmp_path}/state.db"), env=TOKENS)
    running.start()
    yield running
    running.stop()


def test_a_waiver_needs_another_admin_and_takes_the_item_out_of_readiness(
    exporter: Exporter,
) -> None:
    wait_for(lambda: readiness(exporter) == (0.0, 0.5, None), 15, "the first runs", exporter)
    asked = api(exporter, "POST", "/api/v1/waivers", LEAD, **waiver_request())
    assert asked.status_code == 201, asked.text
    waiver = asked.json()
    assert (waiver["status"], waiver["token"], waiver["approved_by"]) == ("requested", "lead", None)
    # Asked for, not approved: nothing changes.
    assert readiness(exporter) == (0.0, 0.5, 0.0)

    approve = f"/api/v1/waivers/{waiver['id']}/approve"
    refused = api(exporter, "POST", approve, LEAD)
    assert refused.status_code == 403 and "another admin" in refused.json()["error"]
    assert api(exporter, "POST", approve, ONCALL).status_code == 403  # attest is not admin
    approved = api(exporter, "POST", approve, OPS)
    assert approved.status_code == 200 and approved.json()["approved_by"] == "ops"
    assert api(exporter, "POST", approve, OPS).status_code == 409

    assert readiness(exporter) == (1.0, 1.0, 1.0)
    expiry = exporter.value("readiness_item_waiver_expiry_timestamp_seconds", item="k8s-probes")
    assert expiry == pytest.approx(time.time() + 30 * 86400, abs=60)
    status = exporter.get("/status", headers={"Authorization": ONCALL}).json()
    item = status["checklists"][0]["sections"][0]["items"][1]
    assert item["waived"].startswith(
        "n/a: runs on VMs, no Kubernetes (alice, approved by ops, until"
    )
    page = exporter.get("/status", headers={"Authorization": ONCALL, "Accept": "text/html"})
    assert "n/a: runs on VMs, no Kubernetes (alice, approved by ops, until" in page.text
    # It keeps running: its failure is still measured and shown.
    assert item["passing"] is False and item["reason"] == "condition"

    revoked = api(exporter, "DELETE", f"/api/v1/waivers/{waiver['id']}", OPS)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert readiness(exporter)[:2] == (0.0, 0.5)
    listed = api(exporter, "GET", "/api/v1/waivers?item=k8s-probes", ONCALL).json()["waivers"]
    assert [(w["id"], w["status"]) for w in listed] == [(waiver["id"], "revoked")]
    events = api(exporter, "GET", "/api/v1/history?item=k8s-probes", ONCALL).json()["history"]
    # The waiver's life is in the item's history, in order (the `waived` state in between is
    # recorded by the next run or history tick, which may come after the revocation).
    kinds = [e["state"] for e in events if e["state"].startswith("waiver_")]
    assert kinds == ["waiver_requested", "waiver_approved", "waiver_revoked"]
    revocation = next(e for e in events if e["state"] == "waiver_revoked")
    assert revocation["detail"]["revoked_by"] == "ops"


def test_the_person_who_asked_may_not_approve_with_another_token(exporter: Exporter) -> None:
    # Only the requesting token was refused: lead asking through the shared on-call token (by
    # "lead") approved their own waiver with their admin token.
    url = ["--url", exporter.url]
    asked = api(exporter, "POST", "/api/v1/waivers", ONCALL, **{**waiver_request(), "by": "Lead "})
    assert asked.status_code == 201, asked.text
    approve = f"/api/v1/waivers/{asked.json()['id']}/approve"
    refused = api(exporter, "POST", approve, LEAD)
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        f"waiver {asked.json()['id']} was asked for by Lead (token oncall): lead may not approve"
        " it, another admin must"
    )
    by_cli = cli("approve", *url, str(asked.json()["id"]), token=LEAD)
    assert by_cli.returncode != 0 and "lead may not approve it, another admin must" in by_cli.stderr
    listed = api(exporter, "GET", "/api/v1/waivers", ONCALL).json()["waivers"]
    assert [w["status"] for w in listed] == ["requested"]
    approved = api(exporter, "POST", approve, OPS)
    assert approved.status_code == 200 and approved.json()["approved_by"] == "ops"

    # The token that asked is refused whatever name it asked in.
    mine = api(exporter, "POST", "/api/v1/waivers", LEAD, **{**waiver_request(), "by": "alice"})
    refused = api(exporter, "POST", f"/api/v1/waivers/{mine.json()['id']}/approve", LEAD)
    assert refused.status_code == 403
    assert refused.json()["error"].endswith("lead may not approve it, another admin must")


def test_bad_waivers_are_refused_with_the_field(exporter: Exporter) -> None:
    for body, field in (
        ({**waiver_request(), "expires": "365d"}, "expires"),
        ({**waiver_request(), "expires": "2001-01-01"}, "expires"),
        ({k: v for k, v in waiver_request().items() if k != "expires"}, "expires"),
        ({**waiver_request(), "reason": ""}, "reason"),
    ):
        refused = api(exporter, "POST", "/api/v1/waivers", ONCALL, **body)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
    missing = api(exporter, "POST", "/api/v1/waivers", ONCALL, **{**waiver_request(), "item": "x"})
    assert missing.status_code == 404
    assert api(exporter, "POST", "/api/v1/waivers/999/approve", OPS).status_code == 404
    # A foreign page may not ask for one.
    foreign = httpx.post(
        f"{exporter.url}/api/v1/waivers",
        json=waiver_request(),
        headers={"Authorization": ONCALL, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403


def test_bad_expiries_are_a_clear_422_never_a_server_error(exporter: Exporter) -> None:
    # `expires: 1970-01-01` answered "None is not in the future"; times beyond what a date holds
    # (1e300, a span of 10^12 days) reached a formatter that raised.
    for expires, says in (
        ("1970-01-01", "expires 1970-01-01T00:00:00Z is not in the future"),
        ("1970-01-01T00:00:00Z", "expires 1970-01-01T00:00:00Z is not in the future"),
        ("yesterday", "'yesterday' is not a date"),
        ("2027-13-45", "'2027-13-45' is not a date"),
        ("-5d", "'-5d' is not a date"),
        ("1e300", "expires '1e300' is more than exporter.max_waiver (90 days) ahead"),
        ("-1e300", "expires '-1e300' is not in the future"),
        ("999999999999d", "is not a date"),
        ("9999-12-31", "expires 9999-12-31T00:00:00Z is more than exporter.max_waiver"),
        ("nan", "'nan' is not a date"),
        ("", "at least 1 character"),
        (12345, "valid string"),
        (None, "valid string"),
        (["30d"], "valid string"),
    ):
        refused = api(exporter, "POST", "/api/v1/waivers", ONCALL, **waiver_request(expires))
        assert refused.status_code == 422, (expires, refused.text)
        assert refused.json()["field"] == "expires", (expires, refused.text)
        assert says in refused.json()["error"], (expires, refused.text)
    assert "Traceback" not in exporter.output()
    assert api(exporter, "GET", "/api/v1/waivers", ONCALL).json()["waivers"] == []


def test_a_waiver_counts_no_more_once_it_expires(exporter: Exporter) -> None:
    wait_for(lambda: readiness(exporter)[0] == 0.0, 15, "the first runs", exporter)
    waiver = api(exporter, "POST", "/api/v1/waivers", ONCALL, **waiver_request("4s")).json()
    approved = api(exporter, "POST", f"/api/v1/waivers/{waiver['id']}/approve", OPS)
    assert approved.status_code == 200
    assert readiness(exporter) == (1.0, 1.0, 1.0)
    wait_for(lambda: readiness(exporter) == (0.0, 0.5, 0.0), 10, "the expiry", exporter)
    listed = api(exporter, "GET", "/api/v1/waivers", ONCALL).json()["waivers"]
    assert listed[0]["status"] == "expired"


def cli(*args: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "READINESS_TOKEN": token.removeprefix("Bearer ")}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_the_cli_asks_approves_and_revokes(exporter: Exporter) -> None:
    url = ["--url", exporter.url]
    asked = cli(
        "waive", *url, "app", "k8s-probes", "--reason", "VMs", "--by", "bob",
        "--expires", "7d", token=ONCALL,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    id_ = asked.stdout.split()[1]
    assert "requested" in asked.stdout
    approved = cli("approve", *url, id_, token=OPS)
    assert approved.returncode == 0 and "approved by ops" in approved.stdout, approved.stderr
    wait_for(lambda: readiness(exporter)[0] == 1.0, 10, "ready while waived", exporter)
    again = cli("approve", *url, id_, token=LEAD)
    assert again.returncode == 2 and "already approved by ops" in again.stderr
    revoked = cli("revoke", *url, id_, token=LEAD)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    no_token = cli("revoke", *url, id_, token="")
    assert no_token.returncode == 2 and "READINESS_TOKEN" in no_token.stderr


def test_without_approval_a_waiver_holds_at_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path}/state.db", "  waivers_need_approval: false"
    )
    running = Exporter(config, env=TOKENS)
    running.start()
    try:
        asked = api(running, "POST", "/api/v1/waivers", ONCALL, **waiver_request())
        assert asked.json()["status"] == "approved" and asked.json()["approved_by"] == "oncall"
        assert readiness(running)[2] == 1.0
    finally:
        running.stop()


def test_two_replicas_on_one_postgresql_agree_on_a_waiver(tmp_path: Path, database: str) -> None:
    # One config: a waiver holds for the item's definition, the same on every replica.
    config = write_config(tmp_path, database)
    first, second = Exporter(config, env=TOKENS), Exporter(config, env=TOKENS)
    first.start()
    second.start()
    try:
        waiver = api(first, "POST", "/api/v1/waivers", ONCALL, **waiver_request()).json()
        # The requester's token is refused on the other replica too.
        assert (
            api(second, "POST", f"/api/v1/waivers/{waiver['id']}/approve", OPS).status_code == 200
        )
        assert (
            api(first, "POST", f"/api/v1/waivers/{waiver['id']}/approve", LEAD).status_code == 409
        )
        for replica in (first, second):
            wait_for(lambda r=replica: readiness(r)[2] == 1.0, 10, "the waiver", replica)
        api(first, "DELETE", f"/api/v1/waivers/{waiver['id']}", LEAD)
        wait_for(lambda: readiness(second)[:2] == (0.0, 0.5), 10, "the revocation", second)
        history = api(second, "GET", "/api/v1/history?item=k8s-probes", ONCALL).json()["history"]
        events = [e["state"] for e in history if e["state"].startswith("waiver_")]
        assert events == ["waiver_requested", "waiver_approved", "waiver_revoked"]
    finally:
        first.stop()
        second.stop()


def test_a_secret_pasted_into_a_reason_or_note_is_masked_in_the_append_only_records(
    exporter: Exporter, tmp_path: Path
) -> None:
    # The rows and their history records are never edited: a token stored there in clear would
    # show again in /api/v1/history and the evidence once a rotation drops it from the config.
    lead = TOKENS["I17_LEAD_TOKEN"]
    body = {**waiver_request(), "reason": f"VMs only; was told to use token {lead}"}
    assert api(exporter, "POST", "/api/v1/waivers", ONCALL, **body).status_code == 201
    attested = api(
        exporter, "POST", "/api/v1/attestations", ONCALL,
        checklist="app", item="go-live", by="bob", note=f"checked with {lead}",
    )  # fmt: skip
    assert attested.status_code == 201, attested.text
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        stored = db.execute(
            "SELECT reason FROM waiver UNION ALL SELECT note FROM attestation"
            " UNION ALL SELECT detail FROM history"
        ).fetchall()
    assert stored and not [row for row in stored if lead in row[0]]
    assert "VMs only; was told to use token <redacted>" in [row[0] for row in stored]


async def record_old(path: Path, secret: str) -> None:
    """A waiver and an attestation as a version that did not mask them wrote them."""
    store = SqliteStore(str(path))
    await store.open()
    try:
        now = time.time()
        waiver = await store.request_waiver(
            Waiver("app", "k8s-probes", f"VMs {secret}", f"alice {secret}", now, now + 86400,
                   "old-definition", token="oncall")
        )  # fmt: skip
        assert waiver.id is not None
        await store.decide_waiver(waiver.id, "approve", "ops", now)
        await store.attest(Attestation("app", "go-live", f"bob {secret}", now, "fp", "n"))
    finally:
        await store.close()


def test_who_asked_in_an_old_record_is_masked_as_an_attestation_is(tmp_path: Path) -> None:
    # GET /api/v1/waivers showed `by` as stored: a record from before masking on write kept a
    # pasted token in clear there (and in the evidence JSON), where /status masked it.
    lead = TOKENS["I17_LEAD_TOKEN"]
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/state.db")
    asyncio.run(record_old(tmp_path / "state.db", lead))
    running = Exporter(config, env=TOKENS)
    running.start()
    try:
        (waiver,) = api(running, "GET", "/api/v1/waivers", ONCALL).json()["waivers"]
        (attestation,) = api(running, "GET", "/api/v1/attestations", ONCALL).json()["attestations"]
        history = api(running, "GET", "/api/v1/history", ONCALL).text
    finally:
        running.stop()
    assert (waiver["by"], waiver["reason"]) == ("alice <redacted>", "VMs <redacted>")
    assert (waiver["token"], waiver["approved_by"]) == ("oncall", "ops")
    assert attestation["by"] == "bob <redacted>"
    assert lead not in history
    evidence = subprocess.run(
        [sys.executable, "-m", "exporter", "evidence", "--config", str(config), "--since",
         "2020-01-01", "--format", "json"],
        capture_output=True, text=True, timeout=30, env={**os.environ, **TOKENS},
    )  # fmt: skip
    assert evidence.returncode == 0, evidence.stderr
    assert lead not in evidence.stdout and '"requested_by": "alice <redacted>"' in evidence.stdout
