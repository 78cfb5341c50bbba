"""`readiness-exporter evidence` on a state with known history: the period's numbers (share of
time passing, regressions after go-live, attestations, waivers, definition changes) match the
recorded transitions; the content hash covers the content; and tampering with one stored row
makes `--verify` fail naming that row."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.history import DEFINED, FAILING, PASSING, WAIVED, Change
from exporter.results import Attestation, Waiver
from exporter.state import Store
from exporter.state.postgres import PostgresStore
from exporter.state.sqlite import SqliteStore
from tests.support.cli import run_cli
from tests.support.services import PG_HOST, PG_PORT, pg_database, psql

DAY = 86400.0
SINCE = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
UNTIL = SINCE + 10 * DAY
CONFIG = """
exporter:
  state: "{state}"
checklists:
  - name: app
    title: The App
    go_live: 2026-10-03T00:00:00Z
    sections:
      - name: ops
        items:
          - id: api
            title: API answers
            tcp: {{host: 127.0.0.1, port: 1}}
          - id: rota
            title: On-call rota
            manual: {{}}
  - name: other
    sections:
      - name: ops
        items:
          - id: x
            title: X
            tcp: {{host: 127.0.0.1, port: 1}}
"""


def sqlite_config(directory: Path) -> str:
    return CONFIG.format(state=f"sqlite:///{directory}/state.db")


async def record_history(path: Path | Store) -> None:
    store = SqliteStore(str(path)) if isinstance(path, Path) else path
    await store.open()
    try:
        await store.append(
            [
                Change("app", "api", SINCE - DAY, DEFINED, "fp1", '{"kind":"tcp","title":"API"}'),
                Change("app", "api", SINCE - DAY, PASSING),
                # Before go-live (day 3): failing on day 1 is not a regression.
                Change("app", "api", SINCE + 1 * DAY, FAILING, "connect"),
                Change("app", "api", SINCE + 1.5 * DAY, PASSING),
                Change("app", "api", SINCE + 4 * DAY, FAILING, "timeout"),
                Change("app", "api", SINCE + 5 * DAY, PASSING),
                Change(
                    "app", "api", SINCE + 6 * DAY, DEFINED, "fp2", '{"kind":"tcp","title":"API"}'
                ),
            ]
        )
        await store.attest(Attestation("app", "rota", "alice", SINCE + 2 * DAY, "f", "PagerDuty"))
        waiver = await store.request_waiver(
            Waiver("app", "api", "maintenance", "bob", SINCE + 7 * DAY, SINCE + 20 * DAY, "fp2",
                   token="lead")
        )  # fmt: skip
        assert waiver.id is not None
        await store.decide_waiver(waiver.id, "approve", "ops", SINCE + 7 * DAY)
        # What the daemon records once the approved waiver holds.
        await store.append([Change("app", "api", SINCE + 7 * DAY, WAIVED)])
    finally:
        await store.close()


def evidence(config: Path, *extra: str) -> tuple[int, str, str]:
    result = run_cli(
        "evidence", "--config", str(config), "--since", "2026-10-01", "--until", "2026-10-11",
        *extra,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def test_the_report_of_a_period_matches_the_recorded_transitions(tmp_path: Path) -> None:
    config = tmp_path / "readiness.yaml"
    config.write_text(sqlite_config(tmp_path))
    asyncio.run(record_history(tmp_path / "state.db"))

    code, out, err = evidence(config, "--format", "json", "--checklist", "app", "--verify")
    assert code == 0, err
    report = json.loads(out)
    assert report["period"] == {"since": "2026-10-01T00:00:00Z", "until": "2026-10-11T00:00:00Z"}
    assert [c["name"] for c in report["checklists"]] == ["app"]
    assert report["chain"].startswith("verified")
    content = {k: report[k] for k in ("period", "checklists")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert report["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()

    api, rota = report["checklists"][0]["items"]
    # 10 days: failing 0.5 d (day 1) and 1 d (day 4); waived from day 7 on (left out).
    assert api["passing_share"] == round((7 - 1.5) / 7, 6)
    assert api["regressions"] == [
        {
            "start": "2026-10-05T00:00:00Z",
            "end": "2026-10-06T00:00:00Z",
            "state": "failing",
            "reason": "timeout",
        }
    ]
    assert [d["fingerprint"] for d in api["definition_changes"]] == ["fp2"]
    (waiver,) = api["waivers"]
    assert (waiver["reason"], waiver["requested_by"], waiver["approved_by"]) == (
        "maintenance",
        "bob",
        "ops",
    )
    assert rota["attestations"] == [
        {"at": "2026-10-03T00:00:00Z", "by": "alice", "note": "PagerDuty", "token": None}
    ]
    assert rota["passing_share"] is None  # no state recorded for it

    code, markdown, _ = evidence(config, "--format", "markdown")
    assert code == 0
    assert "- Period: 2026-10-01T00:00:00Z to 2026-10-11T00:00:00Z" in markdown
    assert "78.57% of the time passing" in markdown
    assert "Waiver 1: maintenance (asked by bob" in markdown
    assert "Audit chain: not verified" in markdown
    code, page, _ = evidence(config, "--format", "html")
    assert (
        code == 0 and page.startswith("<!doctype html>") and "<h1>Readiness evidence</h1>" in page
    )

    # Into a directory: one document per checklist, each with its own hash.
    out = tmp_path / "q4"
    out.mkdir()
    code, listing, err = evidence(config, "--format", "json", "-o", str(out))
    assert code == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert written == ["app-evidence.json", "other-evidence.json"]
    app_doc = json.loads((out / "app-evidence.json").read_text())
    assert [c["name"] for c in app_doc["checklists"]] == ["app"]
    assert f"sha256 {app_doc['sha256']}" in listing


def test_tampering_with_a_stored_row_fails_verify_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "readiness.yaml"
    config.write_text(sqlite_config(tmp_path))
    asyncio.run(record_history(tmp_path / "state.db"))
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("UPDATE history SET reason = 'ok' WHERE id = 5")
        db.commit()
    code, out, err = evidence(config, "--verify")
    assert code == 1
    assert "audit chain: history record 5: its hash does not match its content" in err
    assert "Audit chain: BROKEN" in out

    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("UPDATE history SET reason = 'timeout' WHERE id = 5")
        db.execute("UPDATE attestation SET by_name = 'mallory' WHERE id = 1")
        db.execute("UPDATE waiver SET expires = expires + 86400 * 365 WHERE id = 1")
        db.commit()
    code, _, err = evidence(config, "--verify")
    assert code == 1
    assert err.splitlines() == [
        "audit chain: attestation 1: differs from history record 8",
        "audit chain: waiver 1: differs from history record 9",
    ]

    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("UPDATE attestation SET by_name = 'alice' WHERE id = 1")
        db.execute("UPDATE waiver SET expires = expires - 86400 * 365 WHERE id = 1")
        db.execute("DELETE FROM history WHERE id = 3")
        db.commit()
    code, _, err = evidence(config, "--verify")
    assert code == 1 and "history record 4: does not follow record 2" in err


def test_verify_names_a_forged_approval_and_a_deleted_row(tmp_path: Path) -> None:
    # Who approved a waiver was not checked: `UPDATE waiver SET approved_by = 'ceo'` passed
    # --verify, and so did deleting a waiver or an attestation row outright.
    config = tmp_path / "readiness.yaml"
    config.write_text(sqlite_config(tmp_path))
    asyncio.run(record_history(tmp_path / "state.db"))
    assert evidence(config, "--verify")[0] == 0
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("UPDATE waiver SET approved_by = 'ceo' WHERE id = 1")
        db.commit()
    code, _, err = evidence(config, "--verify")
    assert (code, err) == (
        1,
        "audit chain: waiver 1: its approval differs from history record 10\n",
    )

    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute(
            "UPDATE waiver SET approved_by = 'ops', revoked_by = 'x', revoked_at = 1 WHERE id = 1"
        )
        db.commit()
    code, _, err = evidence(config, "--verify")
    assert (code, err) == (
        1,
        "audit chain: waiver 1: its revocation differs from history record 9\n",
    )

    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("DELETE FROM waiver WHERE id = 1")
        db.execute("DELETE FROM attestation WHERE id = 1")
        db.commit()
    code, _, err = evidence(config, "--verify")
    assert code == 1
    assert err.splitlines() == [
        "audit chain: attestation 1: its row is gone (history record 8 has it)",
        "audit chain: waiver 1: its row is gone (history record 9 has it)",
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def state(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A state URL with record_history's records in it, and how to run SQL on it."""
    if request.param == "sqlite":
        asyncio.run(record_history(tmp_path / "state.db"))

        def on_sqlite(sql: str) -> None:
            with closing(sqlite3.connect(tmp_path / "state.db")) as db:
                db.execute(sql)
                db.commit()

        yield f"sqlite:///{tmp_path}/state.db", on_sqlite
        return
    with pg_database(prefix="i17_evidence") as name:
        url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
        asyncio.run(record_history(PostgresStore(url)))
        yield url, lambda sql: psql(sql.replace("history", "readiness_history"), name)


def test_deleting_the_newest_records_fails_verify_naming_them(
    tmp_path: Path, state: tuple[str, Callable[[str], None]]
) -> None:
    # The chain checks each record against the one before: cutting off the newest records left
    # an intact, shorter chain that --verify passed. The head (last id and hash) says where the
    # chain ends.
    url, sql = state
    config = tmp_path / "readiness.yaml"
    config.write_text(CONFIG.format(state=url))
    assert evidence(config, "--verify")[0] == 0
    for cut, named in (
        ("id = 11", "history record 11 is gone: the chain's head names it as the newest"
                    " (the newest left is 10)"),
        ("id >= 9", "history records 9..11 are gone: the chain's head names 11 as the newest"
                    " (the newest left is 8)"),
        ("id > 0", "history records up to 11 are gone: the chain's head names 11 as the newest"
                   " and none is left"),
    ):  # fmt: skip
        sql(f"DELETE FROM history WHERE {cut}")
        code, out, err = evidence(config, "--verify")
        assert code == 1 and "Audit chain: BROKEN" in out
        assert f"audit chain: {named}" in err.splitlines(), err
        if cut == "id = 11":
            assert err.count("\n") == 1, err  # the chain before it is intact


def test_bad_periods_are_usage_errors(tmp_path: Path) -> None:
    config = tmp_path / "readiness.yaml"
    config.write_text(sqlite_config(tmp_path))
    bad = run_cli("evidence", "--config", str(config), "--since", "last quarter")
    assert bad.returncode == 2 and "--since" in bad.stderr
    backwards = run_cli(
        "evidence", "--config", str(config), "--since", "2026-10-02", "--until", "2026-10-01"
    )
    assert backwards.returncode == 2 and "after --since" in backwards.stderr
    unknown = run_cli("evidence", "--config", str(config), "--since", "2026-10-01",
                      "--checklist", "nope")  # fmt: skip
    assert unknown.returncode == 2 and "nope" in unknown.stderr
