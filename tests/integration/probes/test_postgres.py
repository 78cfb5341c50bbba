"""The `postgres` probe against the machine's real PostgreSQL, in a throwaway database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from exporter.conditions import Condition
from exporter.probes import postgres
from exporter.probes.base import Facts, ProbeContext, ProbeFailure
from exporter.reasons import Reason
from tests.support.services import MARKET_SCHEMA, PG_HOST, PG_PORT, TcpProxy, pg_database, psql

SCHEMA = (
    MARKET_SCHEMA
    + """
CREATE VIEW latest AS SELECT 1 AS one;
INSERT INTO symbols (ticker) VALUES ('MSFT'), ('GOOG');
"""
)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with pg_database(SCHEMA) as name:
        yield name


@pytest.fixture
def dsn(database: str) -> str:
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}"


def holds(condition: str, facts: Facts) -> bool:
    return Condition.parse(condition).holds(facts)


async def test_server_facts(dsn: str, ctx: ProbeContext) -> None:
    facts = await postgres.probe(postgres.Spec(dsn=dsn), ctx)

    major = int(psql("SHOW server_version_num")) // 10000
    assert facts["connected"] is True
    assert isinstance(facts["version"], str)
    assert facts["version"].startswith(f"{major}.")
    assert holds(f"version >= {major}", facts)
    assert not holds(f"version >= {major + 1}", facts)
    assert facts["is_replica"] is False
    assert facts["replication_lag"] is None
    assert facts["ssl"] is False  # this machine's server has ssl = off
    assert isinstance(facts["connections_used"], int)
    assert facts["connections_used"] >= 1
    assert isinstance(facts["connections_used_ratio"], float)
    assert 0 < facts["connections_used_ratio"] < 1
    assert "last_archive_age" in facts
    assert isinstance(facts["duration"], float)
    assert 0 < facts["duration"] < 5


async def test_missing_tables_indexes_and_extensions_are_counted_and_named(
    dsn: str, ctx: ProbeContext
) -> None:
    spec = postgres.Spec(
        dsn=dsn,
        tables=["symbols", "market.quotes", "public.symbols", "trades", "market.symbols"],
        indexes=["quotes_symbol_at_idx", "market.quotes_symbol_at_idx", "symbols_ticker_trgm_idx"],
        extensions=["pg_trgm", "plpgsql", "postgis"],
    )

    facts = await postgres.probe(spec, ctx)

    # market.quotes_symbol_at_idx: an index lives in its table's schema, not on the search_path.
    assert facts["missing_tables"] == 2
    assert facts["missing_tables_names"] == ["trades", "market.symbols"]
    assert facts["missing_indexes"] == 1
    assert facts["missing_indexes_names"] == ["quotes_symbol_at_idx"]
    assert facts["missing_extensions"] == 1
    assert facts["missing_extensions_names"] == ["postgis"]


async def test_a_view_is_not_a_table_nor_a_table_an_index(dsn: str, ctx: ProbeContext) -> None:
    spec = postgres.Spec(dsn=dsn, tables=["latest"], indexes=["symbols"])

    facts = await postgres.probe(spec, ctx)

    assert facts["missing_tables_names"] == ["latest"]
    assert facts["missing_indexes_names"] == ["symbols"]


async def test_all_present_means_zero_missing(dsn: str, ctx: ProbeContext) -> None:
    spec = postgres.Spec(
        dsn=dsn,
        tables=["symbols", "market.quotes"],
        indexes=["market.quotes_symbol_at_idx"],
        extensions=["pg_trgm"],
    )

    facts = await postgres.probe(spec, ctx)

    assert (facts["missing_tables"], facts["missing_indexes"], facts["missing_extensions"]) == (
        0,
        0,
        0,
    )
    assert holds("missing_tables == 0", facts)


async def test_settings_are_read_as_the_server_shows_them(dsn: str, ctx: ProbeContext) -> None:
    names = ["max_connections", "shared_buffers", "statement_timeout", "no_such_setting"]

    facts = await postgres.probe(postgres.Spec(dsn=dsn, settings=names), ctx)

    assert facts["setting.max_connections"] == psql("SHOW max_connections")
    assert facts["setting.shared_buffers"] == psql("SHOW shared_buffers")
    # The server's own default, not the statement_timeout the probe sets for a user's query.
    assert facts["setting.statement_timeout"] == psql("SHOW statement_timeout")
    assert facts["setting.no_such_setting"] is None
    assert holds("setting.max_connections >= 20", facts)
    assert holds("setting.shared_buffers >= 8MB", facts)


async def test_a_database_level_setting_is_what_a_new_session_sees(
    database: str, dsn: str, ctx: ProbeContext
) -> None:
    psql(f"ALTER DATABASE {database} SET statement_timeout = '30s'")
    # A new pool: the sessions of the shared one started before the change.
    fresh = ProbeContext(timeout=5)
    try:
        spec = postgres.Spec(dsn=dsn, settings=["statement_timeout"], query="SELECT 1")
        facts = await postgres.probe(spec, fresh)
    finally:
        psql(f"ALTER DATABASE {database} RESET statement_timeout")
        await fresh.resources.aclose()

    assert facts["setting.statement_timeout"] == "30s"
    assert holds("setting.statement_timeout <= 60s", facts)
    assert holds("setting.statement_timeout > 0s", facts)


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("SELECT count(*) FROM symbols", 3),
        ("SELECT ticker FROM symbols ORDER BY id", "AAPL"),
        ("SELECT 0.25::numeric", 0.25),
        ("SELECT interval '90 seconds'", 90.0),
        ("SELECT NULL", None),
        ("SELECT true", True),
    ],
)
async def test_a_query_gives_its_first_value(
    dsn: str, ctx: ProbeContext, query: str, value: object
) -> None:
    facts = await postgres.probe(postgres.Spec(dsn=dsn, query=query), ctx)

    assert facts["value"] == value
    assert facts["rows"] >= 1


async def test_a_query_with_no_rows_has_no_value(dsn: str, ctx: ProbeContext) -> None:
    spec = postgres.Spec(dsn=dsn, query="SELECT ticker FROM symbols WHERE false")

    facts = await postgres.probe(spec, ctx)

    assert facts["rows"] == 0
    assert facts["value"] is None
    assert not holds("value == 'AAPL'", facts)


async def test_a_query_cannot_write(database: str, dsn: str, ctx: ProbeContext) -> None:
    spec = postgres.Spec(dsn=dsn, query="INSERT INTO symbols (ticker) VALUES ('EVIL') RETURNING 1")

    with pytest.raises(ProbeFailure) as failure:
        await postgres.probe(spec, ctx)

    assert failure.value.reason is Reason.ERROR
    assert "read-only" in failure.value.message
    assert failure.value.facts == {}  # so the item fails whatever its conditions say
    assert psql("SELECT count(*) FROM symbols WHERE ticker = 'EVIL'", database) == "0"


async def test_a_broken_query_is_an_error_naming_the_problem(dsn: str, ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await postgres.probe(postgres.Spec(dsn=dsn, query="SELECT * FROM nowhere"), ctx)

    assert failure.value.reason is Reason.ERROR
    assert 'relation "nowhere" does not exist' in failure.value.message


async def test_a_slow_query_is_cancelled_on_the_server(database: str, dsn: str) -> None:
    marker = f"probe_sleep_{time.monotonic_ns()}"
    spec = postgres.Spec(dsn=dsn, query=f"SELECT pg_sleep(30) AS {marker}")
    ctx = ProbeContext(timeout=1)
    started = time.monotonic()

    try:
        with pytest.raises(ProbeFailure) as failure:
            await asyncio.wait_for(postgres.probe(spec, ctx), ctx.timeout)
        elapsed = time.monotonic() - started

        assert elapsed < ctx.timeout
        assert failure.value.reason is Reason.TIMEOUT
        assert "statement_timeout" in failure.value.message
        still_running = (
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            f"AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
        )
        assert psql(still_running, database) == "0"
    finally:
        await ctx.resources.aclose()


async def test_the_pool_is_reused_across_runs(dsn: str, ctx: ProbeContext) -> None:
    spec = postgres.Spec(dsn=dsn, query="SELECT pg_backend_pid()")

    first = await postgres.probe(spec, ctx)
    second = await postgres.probe(spec, ctx)

    assert first["value"] == second["value"]


async def test_a_killed_session_is_replaced_within_the_same_run(
    dsn: str, ctx: ProbeContext
) -> None:
    spec = postgres.Spec(dsn=dsn, query="SELECT pg_backend_pid()")
    first = await postgres.probe(spec, ctx)
    psql(f"SELECT pg_terminate_backend({first['value']})")

    second = await postgres.probe(spec, ctx)

    assert second["connected"] is True
    assert second["value"] != first["value"]


async def test_a_server_that_went_away_fails_fast_then_recovers(database: str) -> None:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    proxy.start()
    spec = postgres.Spec(dsn=f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}")
    ctx = ProbeContext(timeout=3)
    try:
        assert (await postgres.probe(spec, ctx))["connected"] is True
        proxy.stop()
        started = time.monotonic()

        with pytest.raises(ProbeFailure) as failure:
            await postgres.probe(spec, ctx)

        assert time.monotonic() - started < 1
        assert failure.value.reason is Reason.CONNECT
        assert f"127.0.0.1:{proxy.port}" in failure.value.message
        assert failure.value.facts["connected"] is False

        proxy.start()
        assert (await postgres.probe(spec, ctx))["connected"] is True
    finally:
        proxy.stop()
        await ctx.resources.aclose()


async def test_a_closed_port_is_a_connect_failure_naming_the_host(
    closed_port: int, ctx: ProbeContext
) -> None:
    spec = postgres.Spec(dsn=f"postgresql://postgres:hunter22@127.0.0.1:{closed_port}/test")
    started = time.monotonic()

    with pytest.raises(ProbeFailure) as failure:
        await postgres.probe(spec, ctx)

    assert time.monotonic() - started < 1
    assert failure.value.reason is Reason.CONNECT
    assert failure.value.message == f"127.0.0.1:{closed_port}: Connection refused"


async def test_a_server_that_never_answers_gives_up_within_the_budget(
    full_backlog_port: int,
) -> None:
    spec = postgres.Spec(dsn=f"postgresql://postgres@127.0.0.1:{full_backlog_port}/test")
    ctx = ProbeContext(timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(ProbeFailure) as failure:
            await asyncio.wait_for(postgres.probe(spec, ctx), ctx.timeout)
    finally:
        await ctx.resources.aclose()

    assert time.monotonic() - started < ctx.timeout
    assert failure.value.reason is Reason.TIMEOUT
    assert f"127.0.0.1:{full_backlog_port}" in failure.value.message


async def test_connect_timeout_shorter_than_the_budget_is_a_connect_failure(
    full_backlog_port: int,
) -> None:
    spec = postgres.Spec(
        dsn=f"postgresql://postgres@127.0.0.1:{full_backlog_port}/test", connect_timeout="500ms"
    )
    ctx = ProbeContext(timeout=1)
    started = time.monotonic()
    try:
        with pytest.raises(ProbeFailure) as failure:
            await postgres.probe(spec, ctx)
    finally:
        await ctx.resources.aclose()

    assert time.monotonic() - started < 0.9
    assert failure.value.reason is Reason.CONNECT
    assert "no connection within 0.5s" in failure.value.message


async def test_runs_at_once_recover_from_killed_sessions_on_one_new_pool(
    database: str, dsn: str, ctx: ProbeContext
) -> None:
    spec = postgres.Spec(dsn=dsn, query="SELECT pg_sleep(0.05)")
    ours = f"datname = '{database}' AND application_name = 'readiness-exporter'"
    await asyncio.gather(*(postgres.probe(spec, ctx) for _ in range(postgres.POOL_SIZE)))
    psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {ours}")

    runs = await asyncio.gather(*(postgres.probe(spec, ctx) for _ in range(postgres.POOL_SIZE)))

    assert [r["connected"] for r in runs] == [True] * postgres.POOL_SIZE
    # The killed sessions are gone and the replacement holds no more than one pool's worth.
    count = f"SELECT count(*) FROM pg_stat_activity WHERE {ours}"
    assert int(psql(count)) <= postgres.POOL_SIZE


async def test_an_unknown_role_is_an_auth_failure(database: str, ctx: ProbeContext) -> None:
    spec = postgres.Spec(dsn=f"postgresql://nobody_here:hunter22@{PG_HOST}:{PG_PORT}/{database}")

    with pytest.raises(ProbeFailure) as failure:
        await postgres.probe(spec, ctx)

    assert failure.value.reason is Reason.AUTH
    assert 'role "nobody_here" does not exist' in failure.value.message
    assert "hunter22" not in failure.value.message


async def test_an_unknown_database_is_an_error_naming_it(ctx: ProbeContext) -> None:
    spec = postgres.Spec(dsn=f"postgresql://postgres:hunter22@{PG_HOST}:{PG_PORT}/issue3_nodb")

    with pytest.raises(ProbeFailure) as failure:
        await postgres.probe(spec, ctx)

    assert failure.value.reason is Reason.ERROR
    assert 'database "issue3_nodb" does not exist' in failure.value.message
    assert "hunter22" not in failure.value.message


async def test_requiring_tls_from_a_server_without_it_is_a_tls_failure(
    dsn: str, ctx: ProbeContext
) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await postgres.probe(postgres.Spec(dsn=f"{dsn}?sslmode=require"), ctx)

    assert failure.value.reason is Reason.TLS


async def test_an_unknown_host_is_a_dns_failure(ctx: ProbeContext) -> None:
    spec = postgres.Spec(dsn="postgresql://postgres@no-such-host.invalid/test")

    with pytest.raises(ProbeFailure) as failure:
        await postgres.probe(spec, ctx)

    assert failure.value.reason is Reason.DNS


@pytest.mark.parametrize(
    "fields",
    [
        {"dsn": "mysql://db/x"},
        {"dsn": "host=db user=app"},
        {"dsn": "postgresql://db/x", "tables": ["a; DROP TABLE b"]},
        {"dsn": "postgresql://db/x", "indexes": ["a.b.c"]},
        {"dsn": "postgresql://db/x", "settings": ["work mem"]},
        {"dsn": "postgresql://db/x", "connect_timeout": 0},
    ],
)
def test_invalid_specs_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        postgres.Spec.model_validate(fields)
