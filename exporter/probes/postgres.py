"""`postgres`: a PostgreSQL server's version, schema, settings, load, replication and backups,
and the value of one read-only query, over a small pool shared per DSN."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, field_validator

from exporter.probes.base import (
    ConnectTimeout,
    Facts,
    FactValue,
    ProbeContext,
    ProbeFailure,
    ProbeSpec,
    socket_failure,
)
from exporter.reasons import Reason

# asyncpg is imported inside the functions that use it: most configs never probe this kind,
# and loading it costs every exporter process several MB of RSS.
if TYPE_CHECKING:
    import asyncpg

KIND = "postgres"
DEFAULT_EXPECT: tuple[str, ...] = ("connected == true",)
FACTS: tuple[str, ...] = (
    "connected",
    "version",
    "ssl",
    "ssl_version",
    "is_replica",
    "replication_lag",
    "connections_used",
    "connections_used_ratio",
    "last_archive_age",
    "last_archive_failed",
    "missing_tables",
    "missing_tables_names",
    "missing_indexes",
    "missing_indexes_names",
    "missing_extensions",
    "missing_extensions_names",
    "value",
    "rows",
    "duration",
    "setting.*",
)

# A probe needs one connection; a few let the items on one server run at once (`check` runs
# them all together) without waiting on each other for a connection.
POOL_SIZE = 3
# The server cancels a user's query this long before the budget ends, so its own error
# (57014, query_canceled) arrives before the client gives up.
CANCEL_MARGIN = 0.1

# A relation as a user writes it: `name` or `schema.name`, unquoted identifiers.
_RELATION = r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$"
_SETTING = r"^[A-Za-z_][A-Za-z0-9_.]*$"

_SERVER = """
SELECT current_setting('server_version_num')::int AS version_num,
       pg_is_in_recovery() AS is_replica,
       (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl,
       (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl_version,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
           AS connections_used,
       current_setting('max_connections')::int AS max_connections,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS replication_lag,
       extract(epoch FROM now() - a.last_archived_time)::float8 AS last_archive_age,
       coalesce(a.last_failed_time > a.last_archived_time
                OR (a.last_archived_time IS NULL AND a.last_failed_time IS NOT NULL), false)
           AS last_archive_failed
FROM pg_stat_archiver a
"""
_MISSING_TABLES = """
SELECT n FROM unnest($1::text[]) AS n
WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass(n) AND relkind IN ('r', 'p', 'f'))
"""
_MISSING_INDEXES = """
SELECT n FROM unnest($1::text[]) AS n
WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass(n) AND relkind IN ('i', 'I'))
"""
_MISSING_EXTENSIONS = """
SELECT n FROM unnest($1::text[]) AS n
WHERE NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = n)
"""
_SETTINGS = "SELECT n, current_setting(n, true) FROM unnest($1::text[]) AS n"

# SQLSTATEs that mean the server would not let this client in or is not accepting anyone.
_AUTH_STATES = ("28000", "28P01")  # invalid_authorization_specification, invalid_password
_UNAVAILABLE_STATES = ("53300", "57P01", "57P02", "57P03")  # too many clients, shutting down


class Spec(ProbeSpec):
    dsn: str = Field(min_length=1, description="postgresql://user:${PASSWORD}@host:5432/db")
    tables: tuple[str, ...] = Field(default=(), description="`name` or `schema.name`")
    indexes: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    settings: tuple[str, ...] = Field(default=(), description="read as setting.<name>")
    query: str | None = Field(default=None, min_length=1, description="its first value: `value`")
    connect_timeout: ConnectTimeout = 5.0

    @field_validator("dsn")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("postgres", "postgresql"):
            raise ValueError(
                "the dsn must be a URL such as postgresql://user:${PGPASSWORD}@host:5432/db"
            )
        return value

    @field_validator("tables", "indexes")
    @classmethod
    def _relations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _names(value, _RELATION, "a name such as `orders` or `public.orders`")

    @field_validator("extensions", "settings")
    @classmethod
    def _identifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _names(value, _SETTING, "a name such as `pg_trgm` or `statement_timeout`")


def _names(value: tuple[str, ...], pattern: str, example: str) -> tuple[str, ...]:
    bad = [name for name in value if not re.fullmatch(pattern, name)]
    if bad:
        raise ValueError(f"{', '.join(map(repr, bad))}: write {example}")
    return value


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    target = _target(spec.dsn)
    started = ctx.clock.monotonic()
    key = (KIND, spec.dsn, spec.connect_timeout)
    # A pooled connection may have died with its server (a restart, a failover): the first
    # attempt then fails as lost and one more runs on a new pool, which connects afresh.
    for attempt in (1, 2):
        pool = await ctx.resources.get(key, lambda: _new_pool(spec), _close_pool)
        try:
            async with asyncio.timeout(ctx.remaining()):
                facts = await _measure(pool, spec, target, ctx)
        except ProbeFailure:
            raise
        except Exception as exc:
            if not _connection_lost(exc):
                raise _failure(exc, target, ctx.budget) from exc
            ctx.resources.forget(key, pool)
            await _close_pool(pool)
            if attempt == 2 or ctx.clock.monotonic() >= ctx.deadline:
                raise _failure(exc, target, ctx.budget) from exc
        else:
            facts["duration"] = ctx.clock.monotonic() - started
            return facts
    raise AssertionError("unreachable")  # pragma: no cover


async def _new_pool(spec: Spec) -> asyncpg.Pool:
    import asyncpg

    # min_size=0: creating the pool opens nothing, so a down server fails in acquire(),
    # within the probe's own timeouts. statement_cache_size=0: a probe's few queries gain
    # nothing from it, and PgBouncer in transaction mode breaks prepared statements.
    pool: asyncpg.Pool = await asyncpg.create_pool(
        spec.dsn,
        min_size=0,
        max_size=POOL_SIZE,
        timeout=spec.connect_timeout,
        statement_cache_size=0,
        max_inactive_connection_lifetime=300,
        server_settings={"application_name": "readiness-exporter"},
    )
    return pool


async def _close_pool(pool: asyncpg.Pool) -> None:
    # terminate(), not close(): close() waits for connections in use, a dead server's forever.
    pool.terminate()


async def _measure(pool: asyncpg.Pool, spec: Spec, target: str, ctx: ProbeContext) -> Facts:
    remaining = ctx.remaining()
    connect_limit = min(spec.connect_timeout, remaining)
    try:
        connection = await pool.acquire(timeout=connect_limit)
    except TimeoutError as exc:
        # When connect_timeout ran out before the budget, the server is unreachable, not slow.
        reason = Reason.CONNECT if spec.connect_timeout < remaining else Reason.TIMEOUT
        raise ProbeFailure(
            reason, f"{target}: no connection within {connect_limit:g}s", {"connected": False}
        ) from exc
    try:
        # Read-only: a probe never writes, even when its query would.
        async with connection.transaction(readonly=True):
            facts = await _server_facts(connection, spec)
            if spec.query is not None:
                facts.update(await _query(connection, spec.query, target, ctx.remaining()))
            return facts
    finally:
        await pool.release(connection)


async def _server_facts(connection: asyncpg.Connection, spec: Spec) -> Facts:
    row = await connection.fetchrow(_SERVER)
    assert row is not None  # pg_stat_archiver always has its one row
    facts: Facts = {
        "connected": True,
        "version": _version(row["version_num"]),
        "ssl": bool(row["ssl"]),
        "ssl_version": row["ssl_version"],
        "is_replica": row["is_replica"],
        "connections_used": row["connections_used"],
        "connections_used_ratio": row["connections_used"] / row["max_connections"],
        "replication_lag": row["replication_lag"],
        "last_archive_age": row["last_archive_age"],
        "last_archive_failed": row["last_archive_failed"],
    }
    for fact, sql, names in (
        ("tables", _MISSING_TABLES, spec.tables),
        ("indexes", _MISSING_INDEXES, spec.indexes),
        ("extensions", _MISSING_EXTENSIONS, spec.extensions),
    ):
        if names:
            missing = [r[0] for r in await connection.fetch(sql, list(names))]
            facts[f"missing_{fact}"] = len(missing)
            facts[f"missing_{fact}_names"] = missing
    if spec.settings:
        for name, value in await connection.fetch(_SETTINGS, list(spec.settings)):
            facts[f"setting.{name}"] = value
    return facts


async def _query(
    connection: asyncpg.Connection, query: str, target: str, remaining: float
) -> Facts:
    import asyncpg

    limit_ms = max(int((remaining - min(CANCEL_MARGIN, remaining / 10)) * 1000), 1)
    # SET LOCAL: the timeout ends with this transaction, the pooled session keeps its own.
    await connection.execute(f"SET LOCAL statement_timeout = {limit_ms}")
    try:
        rows = await connection.fetch(query)
    # No facts with these failures: a query that did not answer fails its item whatever the
    # conditions say about the rest (the runner lets facts that meet them pass).
    except asyncpg.QueryCanceledError as exc:
        raise ProbeFailure(
            Reason.TIMEOUT,
            f"{target}: the query ran past its {limit_ms / 1000:g}s statement_timeout "
            "and the server cancelled it",
        ) from exc
    except asyncpg.ReadOnlySQLTransactionError as exc:
        raise ProbeFailure(Reason.ERROR, f"{target}: the query must only read: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise ProbeFailure(Reason.ERROR, f"{target}: the query failed: {exc}") from exc
    return {"rows": len(rows), "value": _fact_value(rows[0][0]) if rows and rows[0] else None}


def _version(number: int) -> str:
    """server_version_num as a version: 150004 -> "15.4", 90624 -> "9.6.24"."""
    if number >= 100000:
        return f"{number // 10000}.{number % 10000}"
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


def _fact_value(value: Any) -> FactValue:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | decimal.Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [str(v) for v in value]
    return str(value)


def _target(dsn: str) -> str:
    """host:port of a DSN, never its user or password; the host may be a `?host=` socket dir."""
    url = urlsplit(dsn)
    host = parse_qs(url.query).get("host", [url.hostname or "localhost"])[0]
    try:
        port = url.port or 5432
    except ValueError:
        port = 5432
    return f"{host}:{port}"


def _connection_lost(exc: BaseException) -> bool:
    """An error of the connection rather than of a query: the pool behind it may be stale."""
    import asyncpg

    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return exc.sqlstate in _UNAVAILABLE_STATES
    return isinstance(exc, ConnectionError) and not isinstance(exc, ConnectionRefusedError)


def _failure(exc: BaseException, target: str, budget: float) -> ProbeFailure:
    import asyncpg

    down: Facts = {"connected": False}
    if isinstance(exc, TimeoutError):
        return ProbeFailure(Reason.TIMEOUT, f"{target}: no answer within {budget:g}s")
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return ProbeFailure(Reason.CONNECT, f"{target}: connection lost: {exc}", down)
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state in _AUTH_STATES:
            return ProbeFailure(Reason.AUTH, f"{target}: rejected: {exc}", down)
        if state in _UNAVAILABLE_STATES:
            return ProbeFailure(Reason.CONNECT, f"{target}: {exc}", down)
        return ProbeFailure(Reason.ERROR, f"{target}: {exc}", down)
    found = socket_failure(exc, target, down)
    if found is not None:
        return found
    if isinstance(exc, ConnectionError) and "SSL" in str(exc):
        # asyncpg's own words when sslmode=require meets a server without TLS.
        return ProbeFailure(Reason.TLS, f"{target}: {exc}", down)
    if isinstance(exc, ConnectionError | OSError):
        return ProbeFailure(Reason.CONNECT, f"{target}: {exc}", down)
    return ProbeFailure(Reason.ERROR, f"{target}: {type(exc).__name__}: {exc}", down)
