"""The PostgreSQL store for replicas: every replica reads and writes one database, so each sees
every attestation made through any of them by its next scrape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from exporter.history import WAIVER_APPROVED, WAIVER_REQUESTED, WAIVER_REVOKED, Change, seal
from exporter.redact import Redactor
from exporter.results import Attestation, ItemKey, Result, Waiver
from exporter.state import Conflict, OutcomeUnknown, StateError, StoreUnavailable, audit
from exporter.state.batch import Batch, GroupCommit
from exporter.state.cache import (
    StateCache,
    attestation_of,
    attestation_row,
    result_row,
)
from exporter.state.health import DEADLINE, PING_DEADLINE, StoreHealth, bounded

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

_LATEST = (
    "SELECT id, checklist, item, by_name, note, at, fingerprint, token"
    " FROM readiness_attestation WHERE id IN"
    " (SELECT max(id) FROM readiness_attestation GROUP BY checklist, item)"
)
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


def _sql(query: str) -> str:
    return audit.dollar(query.format(history="readiness_history", waiver="readiness_waiver"))


def _where(dsn: str) -> str:
    """The DSN without its user and password, to name the state in an error."""
    url = urlsplit(dsn)
    return urlunsplit((url.scheme, url.netloc.rpartition("@")[2], url.path, "", ""))


def _failure(exc: BaseException, redactor: Redactor) -> str:
    if isinstance(exc, TimeoutError):
        return "PostgreSQL: the server does not answer in time"
    return f"PostgreSQL: {redactor.text(str(exc)) or type(exc).__name__}"


class PostgresStore(StoreHealth, StateCache):
    """Every call is bounded by `deadline`: a server that accepts connections and never answers
    costs a probe result (counted), never a hung scrape, probe or shutdown."""

    store_name = "postgresql"

    def __init__(
        self, dsn: str, deadline: float = DEADLINE, redactor: Redactor | None = None
    ) -> None:
        StateCache.__init__(self)
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
            revision = await conn.fetchval("SELECT n FROM readiness_revision", timeout=d)
            latest = await conn.fetch(_LATEST, timeout=d)
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

    async def attest(self, attestation: Attestation) -> Attestation:
        if self.fault is not None:
            self.write_failed(self.fault)
            raise StoreUnavailable(self.fault)
        committing: list[bool] = []
        try:
            try:
                id_, revision = await bounded(self._attest(attestation, committing), self.deadline)
            except _CLOSED_CONNECTION:
                if committing:
                    raise
                # Closed before COMMIT was sent: nothing was recorded, safe to send again.
                await self.pool.expire_connections()
                id_, revision = await bounded(self._attest(attestation, committing), self.deadline)
        except _DRIVER_ERRORS as exc:
            fault = _failure(exc, self.redactor)
            self.write_failed(fault)
            if isinstance(exc, TimeoutError):
                self.failed(fault)
            if committing:
                raise OutcomeUnknown(f"{fault} (after COMMIT was sent)") from exc
            raise StoreUnavailable(fault) from exc
        recorded = replace(attestation, id=id_)
        self._apply(recorded)
        self._saw_revision(revision)
        return recorded

    async def _attest(self, attestation: Attestation, committing: list[bool]) -> tuple[int, int]:
        """Appends to `committing` once COMMIT is on its way: from then on a failure leaves the
        outcome unknown."""
        d = self.deadline
        async with self.pool.acquire(timeout=d) as conn:
            # Plain BEGIN/COMMIT, each with the deadline (asyncpg's transaction() has none); a
            # connection given back mid-transaction is rolled back by the pool.
            await conn.execute("BEGIN", timeout=d)
            # The counter's row lock orders attestations: ids are then in commit order, so
            # "the latest per item" is the same on every replica.
            revision = await conn.fetchval(
                "UPDATE readiness_revision SET n = n + 1 RETURNING n", timeout=d
            )
            id_ = await conn.fetchval(
                "INSERT INTO readiness_attestation"
                " (checklist, item, by_name, note, at, fingerprint, token)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id",
                *attestation_row(attestation),
                timeout=d,
            )
            await self._chain(conn, [audit.attested(replace(attestation, id=int(id_)))])
            committing.append(True)
            await conn.execute("COMMIT", timeout=d)
        return int(id_), int(revision)

    async def attestations(
        self, checklist: str | None, item: str | None, limit: int
    ) -> list[Attestation]:
        query = self._query(
            "fetch",
            "SELECT id, checklist, item, by_name, note, at, fingerprint, token"
            " FROM readiness_attestation"
            " WHERE ($1::text IS NULL OR checklist = $1) AND ($2::text IS NULL OR item = $2)"
            " ORDER BY id DESC LIMIT $3",
            checklist,
            item,
            limit,
            deadline=self.deadline,
        )
        try:
            rows: list[Any] = await bounded(query, self.deadline)
        except _DRIVER_ERRORS as exc:
            raise StoreUnavailable(_failure(exc, self.redactor)) from exc
        return [attestation_of(row) for row in rows]

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
        revision = await self._query(
            "fetchval", "SELECT n FROM readiness_revision", deadline=PING_DEADLINE
        )
        if revision != self._revision:
            await self._reload_attestations()

    # --- the audit records: history chain and waivers -------------------------------------
    async def _chain(self, conn: asyncpg.Connection, changes: Sequence[Change]) -> list[Change]:
        """Inside a transaction: seals and inserts `changes` after the chain's head, whose row
        lock orders the writers of every replica."""
        d = self.deadline
        head = await conn.fetchrow(
            "SELECT last_id, last_hash FROM readiness_history_head FOR UPDATE", timeout=d
        )
        last_id, last_hash = int(head[0]), str(head[1])
        recorded = []
        for change in changes:
            if change.repeats_drop:
                last = await conn.fetchrow(
                    _sql(audit.last_of_kind(change)), change.checklist, change.item, timeout=d
                )
                if tuple(last or ()) == (change.state, change.reason):
                    continue
            last_id += 1
            sealed = seal(change, last_id, last_hash)
            await conn.execute(_sql(audit.INSERT_CHANGE), *audit.change_row(sealed), timeout=d)
            last_hash = sealed.hash
            recorded.append(sealed)
        if recorded:
            await conn.execute(
                "UPDATE readiness_history_head SET last_id = $1, last_hash = $2",
                last_id,
                last_hash,
                timeout=d,
            )
        return recorded

    async def _transaction(
        self,
        durable: bool,
        write: Callable[..., Awaitable[Any]],
        *args: Any,
        committing: list[bool],
    ) -> Any:
        d = self.deadline
        async with self.pool.acquire(timeout=d) as conn:
            await conn.execute("BEGIN", timeout=d)
            out = await write(conn, *args)
            if durable:
                await conn.execute("UPDATE readiness_revision SET n = n + 1", timeout=d)
            committing.append(True)
            await conn.execute("COMMIT", timeout=d)
        return out

    async def _audit(self, durable: bool, write: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Runs an audit write in one transaction; StoreUnavailable when it did not commit,
        OutcomeUnknown when COMMIT was sent and its answer lost."""
        if self.fault is not None:
            self.write_failed(self.fault)
            raise StoreUnavailable(self.fault)
        committing: list[bool] = []
        try:
            out = await bounded(
                self._transaction(durable, write, *args, committing=committing), self.deadline
            )
        except _DRIVER_ERRORS as exc:
            fault = _failure(exc, self.redactor)
            self.write_failed(fault)
            if isinstance(exc, TimeoutError):
                self.failed(fault)
            if committing:
                raise OutcomeUnknown(f"{fault} (after COMMIT was sent)") from exc
            raise StoreUnavailable(fault) from exc
        if durable:
            await self._reload_attestations()
        return out

    async def append(self, changes: Sequence[Change], durable: bool = False) -> list[Change]:
        if not changes:
            return []
        recorded: list[Change] = await self._audit(durable, self._chain, list(changes))
        return recorded

    async def history(
        self,
        checklist: str | None,
        item: str | None,
        since: float | None,
        until: float | None,
        limit: int,
        prior: bool = False,
    ) -> list[Change]:
        try:
            rows: list[Any] = await bounded(
                self._read_history(checklist, item, since, until, limit, prior), self.deadline
            )
        except _DRIVER_ERRORS as exc:
            raise StoreUnavailable(_failure(exc, self.redactor)) from exc
        return [audit.change_of(row) for row in rows]

    async def _read_history(
        self,
        checklist: str | None,
        item: str | None,
        since: float | None,
        until: float | None,
        limit: int,
        prior: bool,
    ) -> list[Any]:
        d = self.deadline
        async with self.pool.acquire(timeout=d) as conn:
            rows = []
            if prior and since is not None:
                rows = await conn.fetch(
                    _sql(audit.PRIOR), since, checklist, checklist, item, item, timeout=d
                )
            query = _sql(audit.HISTORY)
            filters = audit.filters(checklist, item, since, until)
            return [*rows, *await conn.fetch(query, *filters, limit, timeout=d)]

    async def history_head(self) -> tuple[int, str]:
        query = self._query("fetchrow", _sql(audit.HEAD), deadline=self.deadline)
        try:
            row = await bounded(query, self.deadline)
        except _DRIVER_ERRORS as exc:
            raise StoreUnavailable(_failure(exc, self.redactor)) from exc
        return int(row[0]), str(row[1])

    async def prune(self, before: float) -> int:
        async def delete(conn: asyncpg.Connection) -> int:
            status = await conn.execute(_sql(audit.PRUNE), before, timeout=self.deadline)
            return int(status.split()[-1])

        deleted: int = await self._audit(False, delete)
        return deleted

    async def request_waiver(self, waiver: Waiver) -> Waiver:
        async def insert(conn: asyncpg.Connection) -> Waiver:
            id_ = await conn.fetchval(
                _sql(audit.INSERT_WAIVER) + " RETURNING id",
                *audit.waiver_row(waiver),
                timeout=self.deadline,
            )
            recorded = replace(waiver, id=int(id_))
            event = audit.waiver_event(recorded, WAIVER_REQUESTED, recorded.requested_at)
            await self._chain(conn, [event])
            return recorded

        recorded: Waiver = await self._audit(True, insert)
        return recorded

    async def decide_waiver(
        self, id_: int, decision: Literal["approve", "revoke"], by: str, at: float
    ) -> Waiver:
        d = self.deadline

        async def decide(conn: asyncpg.Connection) -> Waiver:
            row = await conn.fetchrow(_sql(audit.WAIVER_BY_ID), id_, timeout=d)
            if row is None:
                raise KeyError(id_)
            update = audit.APPROVE_WAIVER if decision == "approve" else audit.REVOKE_WAIVER
            if await conn.execute(_sql(update), by, at, id_, timeout=d) == "UPDATE 0":
                raise Conflict(audit.conflict(audit.waiver_of(row)))
            decided = audit.waiver_of(await conn.fetchrow(_sql(audit.WAIVER_BY_ID), id_, timeout=d))
            event = WAIVER_APPROVED if decision == "approve" else WAIVER_REVOKED
            await self._chain(conn, [audit.waiver_event(decided, event, at)])
            return decided

        decided: Waiver = await self._audit(True, decide)
        return decided

    async def waivers(
        self, checklist: str | None, item: str | None, limit: int, id_: int | None = None
    ) -> list[Waiver]:
        query = self._query(
            "fetch",
            _sql(audit.WAIVERS),
            checklist,
            checklist,
            item,
            item,
            id_,
            id_,
            limit,
            deadline=self.deadline,
        )
        try:
            rows: list[Any] = await bounded(query, self.deadline)
        except _DRIVER_ERRORS as exc:
            raise StoreUnavailable(_failure(exc, self.redactor)) from exc
        return [audit.waiver_of(row) for row in rows]
