"""The SQLite store: migrates a state file of the previous schema in place, keeps attestations,
and sees attestations another process (connection) wrote once its counter moves."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from exporter.reasons import Reason
from exporter.results import Attestation, ItemKey, Result
from exporter.state import StateError, StoreUnavailable
from exporter.state.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore


def attestation(item: str, by: str, at: float) -> Attestation:
    return Attestation(checklist="app", item=item, by=by, at=at, fingerprint="f1")


async def test_a_version_1_state_file_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
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
        await store.set_ping_start(ItemKey("app", "backup"), 1234.5)
    finally:
        await store.close()
    reopened = SqliteStore(str(path))
    await reopened.open()
    try:
        # A job's start outlives the daemon (a restarted one still times the run out).
        assert reopened.ping_starts() == {ItemKey("app", "backup"): 1234.5}
        await reopened.set_ping_start(ItemKey("app", "backup"), None)
    finally:
        await reopened.close()
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


async def test_a_migration_that_fails_half_way_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """Each migration's statements run one at a time in one transaction: when one fails (here
    the index exists already), none of the others stays and the version does not move."""
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as db:
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("CREATE TABLE other (checklist, item, id)")
        db.execute("CREATE INDEX attestation_item ON other (checklist, item, id)")
        db.execute("PRAGMA user_version=1")
        db.commit()
    store = SqliteStore(str(path))
    with pytest.raises(StateError, match="attestation_item already exists"):
        await store.open()
    await store.close()
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {row[0] for row in check.execute("SELECT name FROM sqlite_master")}
        assert tables == {
            "item_state",
            "sqlite_autoindex_item_state_1",
            "other",
            "attestation_item",
        }


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    store = SqliteStore(str(path))
    with pytest.raises(StateError, match="newer than this exporter"):
        await store.open()
    await store.close()


async def _opened(path: Path, exclusive: bool = False) -> SqliteStore:
    store = SqliteStore(str(path), integrity_every=0)
    await store.open(exclusive=exclusive)
    return store


async def assert_lost(store: SqliteStore, fault: str) -> None:
    """The store reports `fault` naming its path, refuses attestations and counts writes."""
    assert not await store.ping()
    assert store.fault is not None and store.path in store.fault and fault in store.fault
    with pytest.raises(StoreUnavailable, match=fault):
        await store.attest(attestation("on-call", "alice", 2.0))
    before = store.write_errors
    await store.record(ItemKey("app", "health"), Result(True, Reason.OK, 3.0, 0.1))
    assert store.write_errors == before + 1
    # The result still shows: scrapes keep serving from memory.
    result = store.states()[ItemKey("app", "health")].result
    assert result is not None and result.started_at == 3.0


@pytest.mark.parametrize(
    ("damage", "fault"),
    [
        (lambda p: p.unlink(), "was deleted"),
        (
            lambda p: (p.with_name("new.db").write_bytes(b""), p.with_name("new.db").rename(p)),
            "was replaced",
        ),
        (lambda p: p.write_bytes(b"garbage!" * 512 + p.read_bytes()[4096:]), "corrupt"),
    ],
    ids=["deleted", "replaced", "corrupted"],
)
async def test_a_deleted_replaced_or_corrupted_file_is_a_fault(
    tmp_path: Path, damage: object, fault: str
) -> None:
    path = tmp_path / "state.db"
    store = await _opened(path)
    try:
        await store.attest(attestation("on-call", "alice", 1.0))
        assert await store.ping() and store.fault is None
        damage(path)  # type: ignore[operator]
        await assert_lost(store, fault)
    finally:
        await store.close()


async def test_a_second_daemon_on_the_file_is_refused_and_named(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = await _opened(path, exclusive=True)
    try:
        with pytest.raises(StateError, match=rf"in use by .*pid {os.getpid()} on \S+ since 20"):
            await _opened(path, exclusive=True)
        # The CLI's attest/report/check open it without the lock while the daemon runs.
        cli = await _opened(path)
        await cli.attest(attestation("on-call", "bob", 5.0))
        await cli.close()
    finally:
        await first.close()
    # Released with the store: the next daemon starts.
    await (await _opened(path, exclusive=True)).close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a database\n" * 200), "not a SQLite database file"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
    ids=["garbage", "directory"],
)
async def test_an_unusable_file_is_one_line_naming_it(
    tmp_path: Path, make: object, message: str
) -> None:
    path = tmp_path / "state.db"
    make(path)  # type: ignore[operator]
    with pytest.raises(StateError, match=message) as raised:
        await _opened(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
