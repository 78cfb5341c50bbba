"""The history chain in both stores (SQLite, and a real PostgreSQL with a database made for
each test): migrated in place from the previous schema, a state change recorded once however
many replicas see it, retention pruning only what is older, and a tampered row named."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from exporter.evidence import verify
from exporter.history import ATTESTED, FAILING, PASSING, Change, broken_links, lost_tail
from exporter.results import Attestation, ItemKey
from exporter.state import Store
from exporter.state.postgres import MIGRATIONS as PG_MIGRATIONS
from exporter.state.postgres import PostgresStore
from exporter.state.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    if request.param == "sqlite":
        yield lambda: SqliteStore(str(tmp_path / "state.db"))
        return
    dsn = request.getfixturevalue("database")
    yield lambda: PostgresStore(dsn)


@pytest.fixture
async def two(make_store: Callable[[], Store]) -> AsyncIterator[tuple[Store, Store]]:
    first, second = make_store(), make_store()
    await first.open()
    await second.open()
    yield first, second
    await first.close()
    await second.close()


def change(at: float, state: str, reason: str = "", item: str = "api") -> Change:
    return Change("app", item, at, state, reason)


async def test_a_change_seen_by_two_writers_is_recorded_once(two: tuple[Store, Store]) -> None:
    first, second = two
    assert [c.id for c in await first.append([change(10, PASSING)])] == [1]
    assert await second.append([change(11, PASSING)]) == []
    await asyncio.gather(
        first.append([change(20, FAILING, "connect")]),
        second.append([change(20.5, FAILING, "connect")]),
    )
    await second.append([change(30, PASSING), change(30, PASSING, item="db")])
    records = await first.history("app", None, None, None, 100)
    assert [(c.item, c.state, c.reason) for c in records] == [
        ("api", PASSING, ""),
        ("api", FAILING, "connect"),
        ("api", PASSING, ""),
        ("db", PASSING, ""),
    ]
    assert [c.id for c in records] == [1, 2, 3, 4]
    # A limit keeps the newest, still in chain order.
    assert [c.id for c in await second.history(None, None, None, None, 2)] == [3, 4]
    assert broken_links(records) == []
    only_api = await second.history("app", "api", 15, 40, 100)
    # Whichever writer came first recorded the change.
    assert [c.at for c in only_api] in ([20, 30], [20.5, 30])
    # With `prior`: the state each item entered the period in comes first.
    entered = await second.history("app", None, 25, None, 100, prior=True)
    assert [(c.item, c.state) for c in entered] == [
        ("api", FAILING),
        ("api", PASSING),
        ("db", PASSING),
    ]


async def test_an_attestation_is_an_event_in_the_chain(two: tuple[Store, Store]) -> None:
    first, _ = two
    await first.append([change(1, FAILING, "not_attested", item="on-call")])
    await first.attest(Attestation("app", "on-call", "alice", 5.0, "f1", note="rota in PagerDuty"))
    records = await first.history(None, None, None, None, 100)
    assert [c.state for c in records] == [FAILING, ATTESTED]
    assert '"by":"alice"' in records[1].detail and '"id":1' in records[1].detail
    assert broken_links(records) == []


async def test_retention_prunes_only_older_records(two: tuple[Store, Store]) -> None:
    first, second = two
    await first.append([change(10, PASSING), change(20, FAILING, "timeout"), change(30, PASSING)])
    assert await first.prune(20) == 1
    assert await second.prune(20) == 0
    left = await second.history(None, None, None, None, 100)
    assert [c.at for c in left] == [20, 30]
    assert broken_links(left) == []
    # The chain goes on from its head, not from what is left.
    added = await second.append([change(40, FAILING, "timeout")])
    assert added[0].id == 4 and added[0].prev_hash == left[-1].hash


async def test_retention_keeps_the_newest_record_the_head_names(two: tuple[Store, Store]) -> None:
    # The head anchors the chain's end: with the newest record pruned away too, a state whose
    # history was deleted whole could not be told from one retention emptied.
    first, second = two
    assert await first.history_head() == (0, "")
    recorded = await first.append([change(10, PASSING), change(20, FAILING, "timeout")])
    assert await second.history_head() == (2, recorded[-1].hash)
    assert await second.prune(1000) == 1
    left = await first.history(None, None, None, None, 100)
    assert [c.id for c in left] == [2]
    assert lost_tail(left, await first.history_head()) == []


async def test_sqlite_state_of_the_previous_schema_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as db:
        for migration in MIGRATIONS[:3]:
            for statement in migration:
                db.execute(statement)
        db.execute("INSERT INTO item_state (checklist, item, last_success) VALUES ('app','x',42.0)")
        db.execute(
            "INSERT INTO attestation (checklist, item, by_name, note, at, fingerprint)"
            " VALUES ('app', 'rota', 'alice', '', 7.0, 'f1')"
        )
        db.execute("PRAGMA user_version=3")
        db.commit()
    store = SqliteStore(str(path))
    await store.open()
    try:
        assert store.states()[ItemKey("app", "x")].last_success == 42.0
        attestation = store.states()[ItemKey("app", "rota")].attestation
        assert attestation is not None and attestation.by == "alice"
        assert [c.id for c in await store.append([change(1, PASSING)])] == [1]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_postgres_state_of_the_previous_schema_is_migrated_in_place(
    database: str,
) -> None:
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(PG_MIGRATIONS[0])
        await conn.execute("CREATE TABLE readiness_schema (version INTEGER)")
        await conn.execute("INSERT INTO readiness_schema VALUES (1)")
        await conn.execute(
            "INSERT INTO readiness_attestation (checklist, item, by_name, note, at, fingerprint)"
            " VALUES ('app', 'rota', 'alice', '', 7.0, 'f1')"
        )
    finally:
        await conn.close()
    store = PostgresStore(database)
    await store.open()
    try:
        attestation = store.states()[ItemKey("app", "rota")].attestation
        assert attestation is not None and attestation.by == "alice"
        assert [c.id for c in await store.append([change(1, PASSING)])] == [1]
    finally:
        await store.close()


async def test_an_edited_row_is_named_by_the_chain_check(
    two: tuple[Store, Store], tmp_path: Path
) -> None:
    first, _ = two
    await first.append([change(10, PASSING), change(20, FAILING, "timeout"), change(30, PASSING)])
    if isinstance(first, SqliteStore):
        with closing(sqlite3.connect(tmp_path / "state.db")) as db:
            db.execute("UPDATE history SET at = 25 WHERE id = 2")
            db.commit()
    else:
        assert isinstance(first, PostgresStore)
        conn = await asyncpg.connect(first.dsn)
        try:
            await conn.execute("UPDATE readiness_history SET at = 25 WHERE id = 2")
        finally:
            await conn.close()
    records = await first.history(None, None, None, None, 100)
    assert broken_links(records) == ["history record 2: its hash does not match its content"]


async def test_a_snapshot_taken_while_another_writer_attests_is_consistent(
    two: tuple[Store, Store],
) -> None:
    # What `evidence --verify` reads while a daemon keeps writing: every snapshot must pass,
    # never show an attestation without its history record or a head past the records.
    reader, writer = two
    await writer.append([change(float(at), PASSING, item=f"i{at}") for at in range(200)])
    stop = asyncio.Event()

    async def attest() -> int:
        written = 0
        while not stop.is_set():
            await writer.attest(Attestation("app", "on-call", "bob", float(written), "f1"))
            written += 1
        return written

    writing = asyncio.create_task(attest())
    try:
        seen = set()
        for _ in range(40):
            snapshot = await reader.snapshot(100_000)
            problems = verify(
                snapshot.history, snapshot.attestations, snapshot.waivers, snapshot.head
            )
            assert problems == [], problems
            seen.add(len(snapshot.attestations))
            await asyncio.sleep(0)
    finally:
        stop.set()
        written = await writing
    assert written > 0 and len(seen) > 1, "the writer never wrote between two snapshots"
