"""The SQLite store: migrates a state file of the previous schema in place, keeps attestations,
and sees attestations another process (connection) wrote once its counter moves."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from exporter.results import Attestation, ItemKey
from exporter.state.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore


def attestation(item: str, by: str, at: float) -> Attestation:
    return Attestation(checklist="app", item=item, by=by, at=at, fingerprint="f1")


async def test_a_version_1_state_file_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO item_state (checklist, item, last_success) VALUES ('app', 'x', 42.0)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()

    store = SqliteStore(str(path))
    await store.open()
    try:
        assert store.states()[ItemKey("app", "x")].last_success == 42.0
        recorded = await store.attest(attestation("y", "alice", 100.0))
        assert recorded.id == 1
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_writes_of_another_process_show_after_refresh(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    daemon, cli = SqliteStore(path), SqliteStore(path)
    await daemon.open()
    await cli.open()
    try:
        await daemon.attest(attestation("a", "alice", 100.0))
        await cli.attest(attestation("b", "bob", 200.0))
        assert ItemKey("app", "b") not in daemon.states()
        version = daemon.version
        await daemon.refresh()
        assert daemon.states()[ItemKey("app", "b")].attestation is not None
        assert daemon.version > version
        # Nothing new: a refresh changes nothing.
        version = daemon.version
        await daemon.refresh()
        assert daemon.version == version
        history = await daemon.attestations("app", None, limit=10)
        assert [a.by for a in history] == ["bob", "alice"]
    finally:
        await daemon.close()
        await cli.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    store = SqliteStore(str(path))
    with pytest.raises(RuntimeError, match="newer than this exporter"):
        await store.open()
    await store.close()
