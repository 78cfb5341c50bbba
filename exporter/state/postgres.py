"""The PostgreSQL store for replicas: every replica reads and writes one database, so each sees
every attestation made through any of them by its next scrape."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from exporter.redact import Redactor
from exporter.results import ItemKey, Result
from exporter.state import OutcomeUnknown, StateError, StoreUnavailable, audit
from exporter.state.batch import Batch, GroupCommit
from exporter.state.cache import attestation_of, result_row
from exporter.state.health import DEADLINE, PING_DEADLINE, StoreHealth, bounded
from exporter.state.records import AuditRecords, Query

T = TypeVar("T")

MIGRATIONS = (
    """
CREATE TABLE readiness_item_state (
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    passing BOOLEAN,
    reason TEXT,
    started_at DOUBLE PRECISION,
    duration DOUBLE PRECISION,
    facts TEXT,
    failed TEXT,
    message TEXT,
    last_success DOUBLE PRECISION,
    first_seen DOUBLE PRECISION,
    PRIMARY KEY (checklist, item)
);
CREATE TABLE readiness_attestation (
    id BIGSERIAL PRIMARY KEY,
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    by_name TEXT NOT NULL,
    note TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    fingerprint TEXT NOT NULL,
    token TEXT
);
CREATE INDEX readiness_attestation_item ON readiness_attestation (checklist, item, id);
CREATE TABLE readiness_revision (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
INSERT INTO readiness_revision VALUES (1, 0);
""",
    """
CREATE TABLE readiness_ping_start (
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (checklist, item)
);
""",
    """
CREATE TABLE readiness_history (
    id BIGINT PRIMARY KEY,
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX readiness_history_item ON readiness_history (checklist, item, id);
CREATE INDEX readiness_history_at ON readiness_history (at);
CREATE TABLE readiness_history_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), last_id BIGINT NOT NULL, last_hash TEXT NOT NULL
);
INSERT INTO readiness_history_head VALUES (1, 0, '');
CREATE TABLE readiness_waiver (
    id BIGSERIAL PRIMARY KEY,
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    reason TEXT NOT NULL,
    by_name TEXT NOT NULL,
    token TEXT,
    requested_at DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    fingerprint TEXT NOT NULL,
    approved_by TEXT,
    approved_at DOUBLE PRECISION,
    revoked_by TEXT,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX readiness_waiver_item ON readiness_waiver (checklist, item, id);
""",
)
"""Schema version N is MIGRATIONS[:N]; readiness_schema holds N. Append, never edit."""
SCHEMA_VERSION = len(MIGRATIONS)
_LOCK = 0x7265616479  # pg_advisory_xact_lock key: one replica migrates at a time

_DRIVER_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
# A connection the server closed under the pool (failover, pg_terminate_backend): asyncpg may
# only notice on its next use, in any of these forms. Worth one more try on a fresh connection.
_CLOSED_CONNECTION = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
log = structlog.get_logger("exporter.state")


_TABLES = {name: f"readiness_{name}" for name in ("attestation", "history", "revision", "waiver")}


def _sql(query: str) -> str:
    """Audit SQL in PostgreSQL's spelling: its table names and `$n` placeholders."""
    return audit.dollar(query.format(lock=" FOR UPDATE", **_TABLES))


def _where(dsn: str) -> str:
    """The DSN without its user and password, to name the state in an error."""
    url = urlsplit(dsn)
    return urlunsplit((url.scheme, url.netloc.rpartition("@")[2], url.path, "", ""))


def _failure(exc: BaseException, redactor: Redactor) -> str:
    if isinstance(exc, TimeoutError):
        return "PostgreSQL: the server does not answer in time"
    return f"PostgreSQL: {redactor.text(str(exc)) or type(exc).__name__}"


class PostgresStore(StoreHealth, AuditRecords):
    """Every call is bounded by `deadline`: a server that accepts connections and never answers
    costs a probe result (counted), never a hung scrape, probe or shutdown."""

    store_name = "postgresql"

    def __init__(
        self, dsn: str, deadline: float = DEADLINE, redactor: Redactor | None = None
    ) -> None:
        AuditRecords.__init__(self)
        StoreHealth.__init__(self)
        self._results = GroupCommit(self._commit)
        self.dsn = dsn
        self.deadline = deadline
        self.redactor = redactor or Redactor()
        """Masks the config's secrets in the driver's error messages (they may quote the DSN)."""
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        return self._pool

    async def open(self, exclusive: bool = False) -> None:
        """Replicas share the database by design, so `exclusive` takes nothing here."""
        try:
            await bounded(self._open(), 3 * self.deadline)
        except (*_DRIVER_ERRORS, RuntimeError) as exc:
            await self.close()
            raise StateError(f"state {_where(self.dsn)}: {_failure(exc, self.redactor)}") from None

    async def _open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=4, timeout=self.deadline
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS readiness_schema (version INTEGER)")
            version = await conn.fetchval("SELECT max(version) FROM readiness_schema") or 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database has readiness schema {version}, newer than this exporter's "
                    f"{SCHEMA_VERSION}: upgrade the exporter"
                )
            for migration in MIGRATIONS[version:]:
                await conn.execute(migration)
            if version < SCHEMA_VERSION:
                await conn.execute("DELETE FROM readiness_schema")
                await conn.execute("INSERT INTO readiness_schema VALUES ($1)", SCHEMA_VERSION)
        async with self.pool.acquire() as conn:
            for row in await conn.fetch(
                "SELECT checklist, item, passing, reason, started_at, duration, facts, failed,"
                " message, last_success, first_seen FROM readiness_item_state"
            ):
                self._load_row(row)
            for checklist, item, at in await conn.fetch(
                "SELECT checklist, item, at FROM readiness_ping_start"
            ):
                self._set_ping_start(ItemKey(checklist, item), at)
        await self._reload_attestations()
        self.version += 1

    async def _reload_attestations(self) -> None:
        d = self.deadline
        async with self.pool.acquire(timeout=d) as conn:
            # The counter first: a write landing between the two reads is reloaded next time.
            revision = await conn.fetchval(_sql(audit.REVISION), timeout=d)
            latest = await conn.fetch(_sql(audit.LATEST_ATTESTATIONS), timeout=d)
            waivers = await conn.fetch(_sql(audit.OPEN_WAIVERS), timeout=d)
        for row in latest:
            self._apply(attestation_of(row))
        self._set_waivers(audit.by_item(audit.waiver_of(row) for row in waivers))
        self._revision = revision

    async def close(self) -> None:
        if self._pool is not None:
            await self._results.flush()
            pool, self._pool = self._pool, None
            try:
                await bounded(pool.close(), self.deadline)
            except TimeoutError:
                # Connections stuck on a server that does not answer: drop them.
                pool.terminate()

    async def _query(self, method: str, query: str, *args: Any, deadline: float) -> Any:
        """One statement on a pooled connection, both bounded by `deadline`: the pool's own
        shortcuts acquire and give back with no bound, which a hung server turns into a hang."""
        async with self.pool.acquire(timeout=deadline) as conn:
            return await getattr(conn, method)(query, *args, timeout=deadline)

    async def ping(self) -> bool:
        if self._pool is None:
            return False
        try:
            await bounded(
                self._query("fetchval", "SELECT 1", deadline=PING_DEADLINE), PING_DEADLINE
            )
        except _DRIVER_ERRORS as exc:
            self.failed(_failure(exc, self.redactor))
            return False
        self.recovered()
        return True

    async def _write_or_count(
        self, write: Coroutine[Any, Any, Any], item: str, count: int = 1
    ) -> None:
        """Runs a probe-result write of `count` results; one that cannot be made is counted
        and logged, and the results stay in memory (see StoreHealth)."""
        if self.fault is not None:
            write.close()
            self.write_failed(self.fault, count, item=item)
            return
        try:
            await bounded(write, self.deadline)
        except _DRIVER_ERRORS as exc:
            fault = _failure(exc, self.redactor)
            self.write_failed(fault, count, item=item)
            if isinstance(exc, TimeoutError):
                self.failed(fault)

    async def record(self, key: ItemKey, result: Result) -> None:
        await self._results.record(key, (result, *self._recorded(key, result)))

    async def _commit(self, batch: Batch) -> None:
        rows = []
        for key, unwritten in batch.items():
            row = list(result_row(key, *unwritten))
            row[2] = bool(row[2])
            rows.append(row)
        what = str(next(iter(batch))) if len(batch) == 1 else f"{len(batch)} results"
        await self._write_or_count(self._write(rows), item=what, count=len(rows))
        for key, unwritten in batch.items():
            self._set_result(key, *unwritten)

    async def _write(self, rows: list[list[Any]]) -> None:
        # Replicas probe the same items: the last success is the latest any of them saw.
        # executemany runs the batch in one transaction.
        await self._query(
            "executemany",
            "INSERT INTO readiness_item_state VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
            " ON CONFLICT (checklist, item) DO UPDATE SET passing=excluded.passing,"
            " reason=excluded.reason, started_at=excluded.started_at,"
            " duration=excluded.duration, facts=excluded.facts, failed=excluded.failed,"
            " message=excluded.message, last_success=GREATEST(readiness_item_state.last_success,"
            " excluded.last_success), first_seen=LEAST(readiness_item_state.first_seen,"
            " excluded.first_seen)",
            rows,
            deadline=self.deadline,
        )

    async def track(self, keys: Iterable[ItemKey], now: float) -> None:
        new = self._untracked(keys)
        if not new:
            return
        write = self._query(
            "executemany",
            "INSERT INTO readiness_item_state (checklist, item, first_seen) VALUES ($1,$2,$3)"
            " ON CONFLICT (checklist, item) DO UPDATE SET first_seen=excluded.first_seen"
            " WHERE readiness_item_state.first_seen IS NULL",
            [(k.checklist, k.item, now) for k in new],
            deadline=self.deadline,
        )
        await self._write_or_count(write, item=f"{len(new)} new items")
        self._set_first_seen(new, now)

    async def set_ping_start(self, key: ItemKey, at: float | None) -> None:
        self._set_ping_start(key, at)
        if at is None:
            write = self._query(
                "execute",
                "DELETE FROM readiness_ping_start WHERE checklist=$1 AND item=$2",
                key.checklist,
                key.item,
                deadline=self.deadline,
            )
        else:
            write = self._query(
                "execute",
                "INSERT INTO readiness_ping_start VALUES ($1,$2,$3)"
                " ON CONFLICT (checklist, item) DO UPDATE SET at=excluded.at",
                key.checklist,
                key.item,
                at,
                deadline=self.deadline,
            )
        await self._write_or_count(write, item=str(key))

    async def refresh(self) -> None:
        if self.fault is not None:
            return
        # Before every scrape: a server gone quiet costs the scrape the ping deadline, once.
        try:
            await bounded(self._refresh(), PING_DEADLINE)
        except TimeoutError:
            self.failed(_failure(TimeoutError(), self.redactor))
            raise

    async def _refresh(self) -> None:
        revision = await self._query("fetchval", _sql(audit.REVISION), deadline=PING_DEADLINE)
        if revision != self._revision:
            await self._reload_attestations()

    # --- the audit records (exporter/state/records.py) ------------------------------------
    async def _read(self, *queries: Query) -> list[list[Any]]:
        try:
            return await bounded(self._fetch(queries), self.deadline)
        except _DRIVER_ERRORS as exc:
            raise StoreUnavailable(_failure(exc, self.redactor)) from exc

    async def _fetch(self, queries: Sequence[Query]) -> list[list[Any]]:
        d = self.deadline
        async with self.pool.acquire(timeout=d) as conn:
            if len(queries) == 1:
                [(query, args)] = queries
                return [await conn.fetch(_sql(query), *args, timeout=d)]
            # REPEATABLE READ: every query sees the snapshot the first one took.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [await conn.fetch(_sql(q), *a, timeout=d) for q, a in queries]

    async def _transact(
        self, durable: bool, steps: Callable[[], audit.Steps[T]]
    ) -> tuple[T, int | None]:
        if self.fault is not None:
            self.write_failed(self.fault)
            raise StoreUnavailable(self.fault)
        committing: list[bool] = []
        try:
            try:
                return await bounded(self._run(durable, steps(), committing), self.deadline)
            except _CLOSED_CONNECTION:
                if committing:
                    raise
                # Closed before COMMIT was sent: nothing was recorded, safe to send again.
                await self.pool.expire_connections()
                return await bounded(self._run(durable, steps(), committing), self.deadline)
        except _DRIVER_ERRORS as exc:
            fault = _failure(exc, self.redactor)
            self.write_failed(fault)
            if isinstance(exc, TimeoutError):
                self.failed(fault)
            if committing:
                raise OutcomeUnknown(f"{fault} (after COMMIT was sent)") from exc
            raise StoreUnavailable(fault) from exc

    async def _run(
        self, durable: bool, steps: audit.Steps[T], committing: list[bool]
    ) -> tuple[T, int | None]:
        """Appends to `committing` once COMMIT is on its way: from then on a failure leaves the
        outcome unknown."""
        d = self.deadline
        async with self.pool.acquire(timeout=d) as conn:
            # Plain BEGIN/COMMIT, each with the deadline (asyncpg's transaction() has none); a
            # connection given back mid-transaction is rolled back by the pool.
            await conn.execute("BEGIN", timeout=d)
            transaction = audit.transaction(steps, durable)
            step, done = audit.run(transaction)
            while step is not None:
                step, done = audit.run(transaction, await self._step(conn, step))
            committing.append(True)
            await conn.execute("COMMIT", timeout=d)
        out: tuple[T, int | None] = done
        return out

    async def _step(self, conn: asyncpg.Connection, step: audit.Step) -> Any:
        query, d = _sql(step.query), self.deadline
        if step.answer == "row":
            return await conn.fetchrow(query, *step.args, timeout=d)
        if step.answer == "id":
            return await conn.fetchval(f"{query} RETURNING id", *step.args, timeout=d)
        status: str = await conn.execute(query, *step.args, timeout=d)
        return int(status.split()[-1])

    async def _reload(self) -> None:
        await self._reload_attestations()
