"""The embedded SQLite store: WAL mode, one writer thread, probe results group-committed (one
transaction per batch, exporter/state/batch.py), attestations committed and synced before they
are acknowledged; the file is locked by one daemon and watched for being deleted, replaced or
corrupted."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from exporter.results import ItemKey, Result
from exporter.state import OutcomeUnknown, StateError, StoreUnavailable, audit
from exporter.state.batch import Batch, GroupCommit
from exporter.state.cache import attestation_of, result_row
from exporter.state.health import DEADLINE, PING_DEADLINE, StoreHealth, bounded
from exporter.state.records import AuditRecords, Query
from exporter.times import when

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
CREATE TABLE IF NOT EXISTS item_state (
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    passing INTEGER,
    reason TEXT,
    started_at REAL,
    duration REAL,
    facts TEXT,
    failed TEXT,
    message TEXT,
    last_success REAL,
    first_seen REAL,
    PRIMARY KEY (checklist, item)
)""",
    ),
    (
        """
CREATE TABLE attestation (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    by_name TEXT NOT NULL,
    note TEXT NOT NULL,
    at REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    token TEXT
)""",
        "CREATE INDEX attestation_item ON attestation (checklist, item, id)",
        "CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
        "INSERT INTO revision VALUES (1, 0)",
    ),
    (
        """
CREATE TABLE ping_start (
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (checklist, item)
)""",
    ),
    (
        """
CREATE TABLE history (
    id INTEGER PRIMARY KEY,
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    at REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)""",
        "CREATE INDEX history_item ON history (checklist, item, id)",
        "CREATE INDEX history_at ON history (at)",
        "CREATE TABLE history_head (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " last_id INTEGER NOT NULL, last_hash TEXT NOT NULL)",
        "INSERT INTO history_head VALUES (1, 0, '')",
        """
CREATE TABLE waiver (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checklist TEXT NOT NULL,
    item TEXT NOT NULL,
    reason TEXT NOT NULL,
    by_name TEXT NOT NULL,
    token TEXT,
    requested_at REAL NOT NULL,
    expires REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    approved_by TEXT,
    approved_at REAL,
    revoked_by TEXT,
    revoked_at REAL
)""",
        "CREATE INDEX waiver_item ON waiver (checklist, item, id)",
    ),
)
"""Schema version N is MIGRATIONS[:N] applied in order; PRAGMA user_version holds N. Each is a
list of single statements, run one at a time inside the migrating transaction (sqlite3's
executescript would commit that transaction first)."""
SCHEMA_VERSION = len(MIGRATIONS)
T = TypeVar("T")
log = structlog.get_logger("exporter.state")
_MAGIC = b"SQLite format 3\x00"
INTEGRITY_EVERY = 5.0
"""Seconds between integrity checks of the file on disk (a fresh connection's quick_check)."""


def _sql(query: str) -> str:
    """Audit SQL in SQLite's spelling: its table names (an IMMEDIATE transaction locks)."""
    return query.format(
        attestation="attestation", history="history", revision="revision", waiver="waiver", lock=""
    )


class StateLost(Exception):
    """The file at the state path is no longer the one this store opened, or is corrupt."""


def describe(path: str, exc: BaseException) -> str:
    """One line naming the state file and what is wrong, for logs, the API and the CLI."""
    if isinstance(exc, StateLost):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"state {path}: no answer in time (another process holding a lock on it?)"
    read_only = f"state {path}: read-only (the exporter must be able to write it and its folder)"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return read_only
        if exc.errno == errno.ENOSPC:
            return f"disk full writing state {path}"
        return f"state {path}: {exc.strerror or exc}"
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return f"disk full writing state {path}"
    if code == sqlite3.SQLITE_NOTADB:
        return f"state {path}: not a SQLite database file"
    if code == sqlite3.SQLITE_CORRUPT:
        return f"state {path}: the database file is corrupt ({exc})"
    if code == sqlite3.SQLITE_READONLY:
        return read_only
    if code == sqlite3.SQLITE_CANTOPEN:
        file, folder = Path(path), Path(path).parent
        if file.is_dir():
            return f"state {path}: is a directory, not a database file"
        if not folder.is_dir():
            return f"state {path}: its folder {folder} does not exist"
        if not os.access(folder, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
            return read_only
        return f"state {path}: cannot open"
    return f"state {path}: {exc}"


class SqliteStore(StoreHealth, AuditRecords):
    store_name = "sqlite"

    def __init__(
        self, path: str, deadline: float = DEADLINE, integrity_every: float = INTEGRITY_EVERY
    ) -> None:
        AuditRecords.__init__(self)
        StoreHealth.__init__(self)
        self.path = path
        self.deadline = deadline
        self.integrity_every = integrity_every
        # sqlite3 connections are not thread-safe; one worker thread owns this one.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        """(device, inode) of the file opened: another file at the path is not ours."""
        self._lock_fd: int | None = None
        self._header_fd: int | None = None
        self._checked_at = 0.0
        self._results = GroupCommit(self._commit)
        self._open_waivers: list[tuple[Any, ...]] = []
        """Rows read by the worker with the attestations, applied on the event loop."""

    async def _call(self, fn: Callable[..., Any], *args: Any, deadline: float = 0) -> Any:
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        return await bounded(future, deadline or self.deadline)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the SQLite store is not open")
        return self._db

    @property
    def _on_disk(self) -> bool:
        return self.path != ":memory:"

    async def open(self, exclusive: bool = False) -> None:
        try:
            if exclusive and self._on_disk:
                self._claim()
            await self._call(self._open)
            rows, revision, latest, starts = await self._call(self._load)
        except (sqlite3.Error, OSError, TimeoutError) as exc:
            await self.close()
            raise StateError(describe(self.path, exc)) from None
        except StateError:
            await self.close()
            raise
        for row in rows:
            self._load_row(row)
        for row in latest:
            self._apply(attestation_of(row))
        for checklist, item, at in starts:
            self._set_ping_start(ItemKey(checklist, item), at)
        self._set_waivers(audit.by_item(audit.waiver_of(row) for row in self._open_waivers))
        self._revision = revision
        self.version += 1

    def _claim(self) -> None:
        """Takes the lock file `<state>.lock` for as long as the store is open: a second daemon
        on the same file would probe twice and race this one's writes. The CLI verbs that only
        read or add attestations (attest, report, check) do not take it."""
        lock_path = f"{self.path}.lock"
        Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise StateError(
                f"state {self.path} is in use by another readiness-exporter serve ({holder},"
                f" lock {lock_path}): stop it or give this one its own state file"
            ) from None
        since = when(time.time())
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {since}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._lock_fd = fd

    def _open(self) -> None:
        if self._on_disk:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        if self._on_disk:
            # Kept open until close: closing any descriptor of the file would drop the POSIX
            # locks SQLite holds on it in this process, and another process could then
            # checkpoint and remove the WAL under this connection.
            self._header_fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            stat = os.fstat(self._header_fd)
            self._identity = (stat.st_dev, stat.st_ino)
        self._db = db

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA busy_timeout=4000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.execute("ROLLBACK")
            raise StateError(
                f"state {self.path} has schema {version}, newer than this exporter's "
                f"{SCHEMA_VERSION}: upgrade the exporter or use another state file"
            )
        for migration in MIGRATIONS[version:]:
            for statement in migration:
                db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")

    def _load(self) -> tuple[list[Any], int, list[Any], list[Any]]:
        rows = self.db.execute(
            "SELECT checklist, item, passing, reason, started_at, duration, facts, failed, message,"
            " last_success, first_seen FROM item_state"
        ).fetchall()
        revision, latest = self._latest()
        starts = self.db.execute("SELECT checklist, item, at FROM ping_start").fetchall()
        return rows, revision, latest, starts

    def _latest(self) -> tuple[int, list[tuple[Any, ...]]]:
        # The counter first: a write landing between the two reads is reloaded next time.
        revision = self.db.execute(_sql(audit.REVISION)).fetchone()[0]
        latest = self.db.execute(_sql(audit.LATEST_ATTESTATIONS)).fetchall()
        self._open_waivers = self.db.execute(_sql(audit.OPEN_WAIVERS)).fetchall()
        return revision, latest

    async def close(self) -> None:
        if self._db is not None:
            await self._results.flush()
            # A worker stuck on a locked file must not hold up shutdown past the deadline.
            with contextlib.suppress(TimeoutError, sqlite3.Error):
                await self._call(self._db.close)
            self._db = None
        if self._header_fd is not None:
            os.close(self._header_fd)
            self._header_fd = None
        self._executor.shutdown(wait=False)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- is the file still the one we opened, and intact? -----------------------------
    def _verify(self) -> None:
        """StateLost when the path no longer leads to the file this store opened."""
        if self._identity is None:
            return
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise StateLost(f"state {self.path} was deleted while open") from None
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise StateLost(f"state {self.path} was replaced by another file while open")

    def _check(self, integrity: bool) -> None:
        self._verify()
        self.db.execute("SELECT 1").fetchone()
        if not (integrity and self._on_disk):
            return
        # Pages newer in the WAL hide a damaged file from every reader until a checkpoint
        # copies them back; the header on disk is read directly.
        header = os.pread(self._header_fd, len(_MAGIC), 0) if self._header_fd is not None else b""
        if header and header != _MAGIC:
            raise StateLost(f"state {self.path}: the database file is corrupt (bad header)")
        # A fresh connection reads the file as it is on disk, not this connection's cache. A
        # checkpoint racing the read can fail one check, so a fault is confirmed by a second.
        if (verdict := self._quick_check()) != "ok" and (verdict := self._quick_check()) != "ok":
            raise StateLost(f"state {self.path}: the database file is corrupt ({verdict})")

    def _quick_check(self) -> str:
        probe = sqlite3.connect(self.path, check_same_thread=False)
        try:
            probe.execute("PRAGMA busy_timeout=1000")
            return str(probe.execute("PRAGMA quick_check(1)").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return "ok"  # a writer held it past the timeout: nothing known, next time
            return str(exc)
        finally:
            probe.close()

    async def ping(self) -> bool:
        if self._db is None:
            return False
        integrity = time.monotonic() - self._checked_at >= self.integrity_every
        if integrity:
            # Whatever its outcome: during a fault, readiness requests must not each start one.
            self._checked_at = time.monotonic()
        try:
            await self._call(self._check, integrity, deadline=PING_DEADLINE)
        except (sqlite3.Error, TimeoutError, StateLost) as exc:
            self.failed(describe(self.path, exc))
            return False
        self.recovered()
        return True

    def _checked(self, write: Callable[..., Any], *args: Any) -> Any:
        self._verify()
        return write(*args)

    async def _write_or_count(
        self, write: Callable[..., Any], *args: Any, item: str, count: int = 1
    ) -> None:
        """Runs a probe-result write of `count` results; one that cannot be made is counted
        and logged, and the results stay in memory (see StoreHealth)."""
        if self.fault is not None:
            self.write_failed(self.fault, count, path=self.path, item=item)
            return
        try:
            await self._call(self._checked, write, *args)
        except (sqlite3.Error, TimeoutError, StateLost) as exc:
            fault = describe(self.path, exc)
            self.write_failed(fault, count, path=self.path, item=item)
            if isinstance(exc, TimeoutError | StateLost):
                self.failed(fault)

    async def record(self, key: ItemKey, result: Result) -> None:
        await self._results.record(key, (result, *self._recorded(key, result)))

    async def _commit(self, batch: Batch) -> None:
        rows = [result_row(key, *unwritten) for key, unwritten in batch.items()]
        what = str(next(iter(batch))) if len(batch) == 1 else f"{len(batch)} results"
        await self._write_or_count(self._write, rows, item=what, count=len(rows))
        for key, unwritten in batch.items():
            self._set_result(key, *unwritten)

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        self._transaction(
            "INSERT INTO item_state VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(checklist, item) DO UPDATE SET passing=excluded.passing,"
            " reason=excluded.reason, started_at=excluded.started_at, duration=excluded.duration,"
            " facts=excluded.facts, failed=excluded.failed, message=excluded.message,"
            " last_success=excluded.last_success, first_seen=excluded.first_seen",
            rows,
        )

    def _transaction(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """`statement` for every row in one transaction."""
        with self._immediate() as db:
            db.executemany(statement, rows)

    @contextlib.contextmanager
    def _immediate(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (the connection is in autocommit mode, where `with db:`
        would commit each statement on its own); `durable`: synced to disk at COMMIT."""
        db = self.db
        if durable:
            db.execute("PRAGMA synchronous=FULL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some errors (disk full): a second ROLLBACK
                # would replace the real error with "no transaction is active".
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            if durable:
                db.execute("PRAGMA synchronous=NORMAL")

    async def track(self, keys: Iterable[ItemKey], now: float) -> None:
        new = self._untracked(keys)
        if not new:
            return
        rows = [(k.checklist, k.item, now) for k in new]
        await self._write_or_count(self._track, rows, item=f"{len(new)} new items")
        self._set_first_seen(new, now)

    def _track(self, rows: list[tuple[str, str, float]]) -> None:
        self._transaction(
            "INSERT INTO item_state (checklist, item, first_seen) VALUES (?,?,?)"
            " ON CONFLICT(checklist, item) DO UPDATE SET first_seen=excluded.first_seen"
            " WHERE item_state.first_seen IS NULL",
            rows,
        )

    async def set_ping_start(self, key: ItemKey, at: float | None) -> None:
        self._set_ping_start(key, at)
        await self._write_or_count(self._ping_start, key, at, item=str(key))

    def _ping_start(self, key: ItemKey, at: float | None) -> None:
        if at is None:
            self._transaction(
                "DELETE FROM ping_start WHERE checklist=? AND item=?", [(key.checklist, key.item)]
            )
        else:
            self._transaction(
                "INSERT INTO ping_start VALUES (?,?,?)"
                " ON CONFLICT(checklist, item) DO UPDATE SET at=excluded.at",
                [(key.checklist, key.item, at)],
            )

    async def _reload(self) -> None:
        """After our own waiver write: the open waivers as they now are."""
        self._revision = None
        await self.refresh()

    async def refresh(self) -> None:
        if self.fault is not None:
            return
        # Before every scrape: a worker busy behind another process's write lock costs the
        # scrape the ping deadline at most; the attestations then show at the next one.
        revision = await self._call(
            lambda: self.db.execute(_sql(audit.REVISION)).fetchone()[0], deadline=PING_DEADLINE
        )
        if revision == self._revision:
            return
        revision, latest = await self._call(self._latest)
        for row in latest:
            self._apply(attestation_of(row))
        self._set_waivers(audit.by_item(audit.waiver_of(row) for row in self._open_waivers))
        self._revision = revision

    # --- the audit records (exporter/state/records.py) ------------------------------------
    async def _read(self, *queries: Query) -> list[list[Any]]:
        try:
            rows: list[list[Any]] = await self._call(self._fetch, queries)
        except (sqlite3.Error, TimeoutError) as exc:
            raise StoreUnavailable(describe(self.path, exc)) from exc
        return rows

    def _fetch(self, queries: Sequence[Query]) -> list[list[Any]]:
        if len(queries) == 1:
            [(query, args)] = queries
            return [self.db.execute(_sql(query), args).fetchall()]
        # One read transaction: in WAL mode its first read fixes the snapshot all of them see.
        self.db.execute("BEGIN")
        try:
            return [self.db.execute(_sql(q), args).fetchall() for q, args in queries]
        finally:
            self.db.execute("COMMIT")

    async def _transact(
        self, durable: bool, steps: Callable[[], audit.Steps[T]]
    ) -> tuple[T, int | None]:
        out: tuple[T, int | None] = await self._must_write(self._run, durable, steps())
        return out

    def _run(self, durable: bool, steps: audit.Steps[T]) -> tuple[T, int | None]:
        """The write in one IMMEDIATE transaction; `durable`: synced to disk before it returns
        (a person's word), not merely written to the WAL as probe results are."""
        with self._immediate(durable) as db:
            transaction = audit.transaction(steps, durable)
            step, done = audit.run(transaction)
            while step is not None:
                step, done = audit.run(transaction, self._step(db, step))
        out: tuple[T, int | None] = done
        return out

    @staticmethod
    def _step(db: sqlite3.Connection, step: audit.Step) -> Any:
        cursor = db.execute(_sql(step.query), step.args)
        if step.answer == "row":
            return cursor.fetchone()
        return cursor.lastrowid if step.answer == "id" else cursor.rowcount

    async def _must_write(self, write: Callable[..., Any], *args: Any) -> Any:
        """Runs a write a caller waits on (an audit record): StoreUnavailable
        when it cannot be made, OutcomeUnknown on a timeout (the worker thread may still
        commit it after we stop waiting)."""
        if self.fault is not None:
            self.write_failed(self.fault, path=self.path)
            raise StoreUnavailable(self.fault)
        try:
            return await self._call(self._checked, write, *args)
        except TimeoutError as exc:
            fault = describe(self.path, exc)
            self.write_failed(fault, path=self.path)
            self.failed(fault)
            raise OutcomeUnknown(fault) from exc
        except (sqlite3.Error, StateLost) as exc:
            fault = describe(self.path, exc)
            self.write_failed(fault, path=self.path)
            if isinstance(exc, StateLost):
                self.failed(fault)
            raise StoreUnavailable(fault) from exc
