"""Replicas on one PostgreSQL database (a real server on 127.0.0.1:5432, a database made for
each test): the schema is created once even when both start together, and an attestation made
through either is served by the other's very next scrape."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from exporter.reasons import Reason
from exporter.results import Attestation, ItemKey, Result
from exporter.state import StateError, StoreUnavailable
from exporter.state.postgres import SCHEMA_VERSION, PostgresStore
from tests.support.api import post_attestation
from tests.support.cli import run_cli
from tests.support.exporter import Exporter
from tests.support.services import PG_HOST, PG_PORT, TcpProxy, pg_url

ADMIN_DSN = pg_url("postgres")
TOKENS = {"I4_ATTEST_TOKEN": "attest-secret-0123456789abcdef"}
ATTEST = {"Authorization": f"Bearer {TOKENS['I4_ATTEST_TOKEN']}"}


async def admin(sql: str, *args: object) -> object:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@pytest.fixture
async def stores(database: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first, second = PostgresStore(database), PostgresStore(database)
    await asyncio.gather(first.open(), second.open())
    yield first, second
    await first.close()
    await second.close()


def attestation(item: str, by: str, at: float) -> Attestation:
    return Attestation(checklist="app", item=item, by=by, at=at, fingerprint="f1", token="t")


async def test_two_stores_agree_on_the_latest_attestation(
    database: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    first, second = stores
    recorded = await first.attest(attestation("on-call", "alice", 1000.0))
    assert recorded.id is not None
    await second.refresh()
    state = second.states()[next(k for k in second.states() if k.item == "on-call")]
    assert state.attestation == recorded and state.last_success == 1000.0

    # Many writers at once: every store ends on the same latest attestation per item.
    await asyncio.gather(
        *(
            store.attest(attestation("on-call", f"user{i}", 2000.0 + i))
            for i in range(10)
            for store in stores
        )
    )
    await first.refresh()
    await second.refresh()
    [latest] = await first.attestations("app", "on-call", limit=1)
    for store in stores:
        assert (
            next(s for k, s in store.states().items() if k.item == "on-call").attestation == latest
        )
    assert len(await second.attestations(None, None, limit=1000)) == 21

    # Probe results: the last success is the latest any replica saw, restored on open.
    key = ItemKey("app", "health")
    await first.track([key], 500.0)
    await first.record(key, Result(True, Reason.OK, 3000.0, 0.01, {"status": 200}))
    await second.record(key, Result(False, Reason.CONNECT, 2999.0, 0.01, message="refused"))
    reopened = PostgresStore(database)
    await reopened.open()
    try:
        state = reopened.states()[key]
        assert (state.last_success, state.first_seen) == (3000.0, 500.0)
        assert state.result is not None and state.result.reason is Reason.CONNECT
    finally:
        await reopened.close()

    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT max(version) FROM readiness_schema") == SCHEMA_VERSION
        assert await conn.fetchval("SELECT count(*) FROM readiness_schema") == 1
        await conn.execute("UPDATE readiness_schema SET version = $1", SCHEMA_VERSION + 1)
    finally:
        await conn.close()
    newer = PostgresStore(database)
    with pytest.raises(StateError, match="newer than this exporter"):
        await newer.open()
    await newer.close()


async def test_the_store_rides_out_killed_connections_and_refuses_writes_it_cannot_make(
    database: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    """A failover or pg_terminate_backend: the pool reconnects. A database that is gone: an
    attestation is refused as StoreUnavailable (the API's 503, never a 500), probe results
    still show, and nothing raises out of the store."""
    first, _ = stores
    name = database.rsplit("/", 1)[1]
    killed = await admin(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", name
    )
    assert killed >= 2
    recorded = await first.attest(attestation("on-call", "dave", 5000.0))
    assert recorded.id is not None

    await admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        await first.attest(attestation("on-call", "erin", 6000.0))
    with pytest.raises(StoreUnavailable):
        await first.attestations(None, None, limit=10)
    key = ItemKey("app", "health")
    await first.record(key, Result(True, Reason.OK, 7000.0, 0.01))
    assert first.states()[key].last_success == 7000.0
    assert not await first.ping()
    latest = next(s for k, s in first.states().items() if k.item == "on-call").attestation
    assert latest == recorded


def config(tmp_path: Path, database: str) -> Path:
    path = tmp_path / "readiness.yaml"
    path.write_text(f"""
exporter:
  state: "{database}"
  api_tokens:
    - {{name: oncall, token_env: I4_ATTEST_TOKEN, roles: [attest]}}
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: on-call
            title: On-call rotation established
            manual: {{}}
            every: 30d
          - id: signoff
            title: Security sign-off
            manual: {{}}
""")
    return path


@pytest.mark.slow
def test_an_attestation_on_one_replica_is_served_by_the_other(
    tmp_path: Path, database: str
) -> None:
    path = config(tmp_path, database)
    replicas = [Exporter(path, env=TOKENS), Exporter(path, env=TOKENS)]
    # Both start (and migrate) at once: the advisory lock lets one create the schema.
    threads = [threading.Thread(target=r.start) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    first, second = replicas
    try:
        for replica in replicas:
            assert replica.get("/health/ready").status_code == 200, replica.output()
            assert replica.value("readiness_item_passing", item="on-call") == 0.0

        response = post_attestation(first, TOKENS["I4_ATTEST_TOKEN"], item="on-call", by="alice")
        assert response.status_code == 201, response.text
        # One scrape of the other replica, no waiting.
        assert second.value("readiness_item_passing", item="on-call") == 1.0
        history = second.get("/api/v1/attestations", headers=ATTEST).json()["attestations"]
        assert history == [response.json()]

        response = post_attestation(second, TOKENS["I4_ATTEST_TOKEN"], item="go-live", by="lead")
        assert response.status_code == 201
        assert first.value("readiness_checklist_live", checklist="app") == 1.0

        done = run_cli("attest", "--config", str(path), "app", "signoff", "--by", "carol")
        assert done.returncode == 0, done.stderr
        for replica in replicas:
            assert replica.value("readiness_item_passing", item="signoff") == 1.0

        # A replica killed and restarted has everything.
        first.stop(signal.SIGKILL)
        first.start()
        assert first.value("readiness_item_passing", item="on-call") == 1.0
        assert first.value("readiness_item_passing", item="signoff") == 1.0
    finally:
        for replica in replicas:
            if replica.proc is not None:
                replica.stop()


async def test_a_server_that_never_answers_costs_each_call_its_deadline(database: str) -> None:
    """Behind a black-hole proxy every call returns within its deadline: the ping says no,
    results are kept in memory and counted as failed writes, an attestation is refused, and
    closing does not wait for the server."""
    proxy = TcpProxy(PG_HOST, PG_PORT)
    proxy.start()
    store = PostgresStore(database.replace(":5432/", f":{proxy.port}/"), deadline=1.0)
    try:
        await store.open()
        assert await store.ping()
        proxy.freeze()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert not await store.ping()
        assert loop.time() - started < 2.5
        assert store.fault is not None and "does not answer" in store.fault
        key = ItemKey("app", "health")
        await store.record(key, Result(True, Reason.OK, 100.0, 0.01))
        assert store.write_errors == 1 and store.states()[key].last_success == 100.0
        with pytest.raises(StoreUnavailable):
            await store.attest(attestation("on-call", "alice", 1.0))
        await store.refresh()
        started = loop.time()
        await store.close()
        assert loop.time() - started < 2.0
    finally:
        await store.close()
        proxy.stop()


async def test_a_schema_1_database_is_migrated_in_place_and_keeps_ping_starts(
    database: str,
) -> None:
    """A database of the first schema (before job pings) gets the ping-start table in place,
    keeping its rows; a start written through one store is there for the next to open."""
    from exporter.state.postgres import MIGRATIONS

    conn = await asyncpg.connect(database)
    try:
        await conn.execute(MIGRATIONS[0])
        await conn.execute("CREATE TABLE readiness_schema (version INTEGER)")
        await conn.execute("INSERT INTO readiness_schema VALUES (1)")
        await conn.execute(
            "INSERT INTO readiness_item_state (checklist, item, first_seen) VALUES ('app', 'x', 7)"
        )
    finally:
        await conn.close()
    key = ItemKey("app", "backup")
    first = PostgresStore(database)
    await first.open()
    try:
        assert first.states()[ItemKey("app", "x")].first_seen == 7.0
        await first.set_ping_start(key, 1234.5)
        await first.set_ping_start(ItemKey("app", "gone"), 99.0)
        await first.set_ping_start(ItemKey("app", "gone"), None)
    finally:
        await first.close()
    second = PostgresStore(database)
    await second.open()
    try:
        assert second.ping_starts() == {key: 1234.5}
    finally:
        await second.close()
    assert await admin_in(database, "SELECT max(version) FROM readiness_schema") == SCHEMA_VERSION


async def admin_in(database: str, sql: str) -> object:
    conn = await asyncpg.connect(database)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()
