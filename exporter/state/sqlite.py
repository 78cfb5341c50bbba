"""The embedded SQLite store: WAL mode, one writer thread, every write committed at once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from exporter.results import Attestation, ItemKey, Result
from exporter.state import StoreUnavailable
from exporter.state.cache import (
    StateCache,
    attestation_of,
    attestation_row,
    result_row,
)

MIGRATIONS = (
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
);
""",
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
);
CREATE INDEX attestation_item ON attestation (checklist, item, id);
CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT INTO revision VALUES (1, 0);
""",
)
"""Schema version N is MIGRATIONS[:N] applied in order; PRAGMA user_version holds N."""
SCHEMA_VERSION = len(MIGRATIONS)
log = structlog.get_logger("exporter.state")

_LATEST = (
    "SELECT id, checklist, item, by_name, note, at, fingerprint, token FROM attestation WHERE id IN"
    " (SELECT max(id) FROM attestation GROUP BY checklist, item)"
)


class SqliteStore(StateCache):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        # sqlite3 connections are not thread-safe; one worker thread owns this one.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the SQLite store is not open")
        return self._db

    async def open(self) -> None:
        await self._call(self._open)
        rows, revision, latest = await self._call(self._load)
        for row in rows:
            self._load_row(row)
        for row in latest:
            self._apply(attestation_of(row))
        self._revision = revision
        self.version += 1

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.execute("ROLLBACK")
            db.close()
            raise RuntimeError(
                f"state {self.path} has schema {version}, newer than this exporter's "
                f"{SCHEMA_VERSION}: upgrade the exporter or use another state file"
            )
        for migration in MIGRATIONS[version:]:
            for statement in migration.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
        self._db = db

    def _load(self) -> tuple[list[tuple[Any, ...]], int, list[tuple[Any, ...]]]:
        rows = self.db.execute(
            "SELECT checklist, item, passing, reason, started_at, duration, facts, failed, message,"
            " last_success, first_seen FROM item_state"
        ).fetchall()
        revision, latest = self._latest()
        return rows, revision, latest

    def _latest(self) -> tuple[int, list[tuple[Any, ...]]]:
        # The counter first: a write landing between the two reads is reloaded next time.
        revision = self.db.execute("SELECT n FROM revision").fetchone()[0]
        return revision, self.db.execute(_LATEST).fetchall()

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            await self._call(lambda: self.db.execute("SELECT 1").fetchone())
        except (sqlite3.Error, RuntimeError):
            return False
        return True

    async def record(self, key: ItemKey, result: Result) -> None:
        last_success, first_seen = self._recorded(key, result)
        try:
            await self._call(self._write, result_row(key, result, last_success, first_seen))
        except sqlite3.Error as exc:
            log.warning("state_write_failed", path=self.path, item=str(key), error=str(exc))
        self._set_result(key, result, last_success, first_seen)

    def _write(self, row: tuple[Any, ...]) -> None:
        self.db.execute(
            "INSERT INTO item_state VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(checklist, item) DO UPDATE SET passing=excluded.passing,"
            " reason=excluded.reason, started_at=excluded.started_at, duration=excluded.duration,"
            " facts=excluded.facts, failed=excluded.failed, message=excluded.message,"
            " last_success=excluded.last_success, first_seen=excluded.first_seen",
            row,
        )

    async def track(self, keys: Iterable[ItemKey], now: float) -> None:
        new = self._untracked(keys)
        if not new:
            return
        await self._call(self._track, [(k.checklist, k.item, now) for k in new])
        self._set_first_seen(new, now)

    def _track(self, rows: list[tuple[str, str, float]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO item_state (checklist, item, first_seen) VALUES (?,?,?)"
                " ON CONFLICT(checklist, item) DO UPDATE SET first_seen=excluded.first_seen"
                " WHERE item_state.first_seen IS NULL",
                rows,
            )

    async def attest(self, attestation: Attestation) -> Attestation:
        try:
            id_, revision = await self._call(self._attest, attestation_row(attestation))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"state {self.path}: {exc}") from exc
        recorded = replace(attestation, id=id_)
        self._apply(recorded)
        self._saw_revision(revision)
        return recorded

    def _attest(self, row: tuple[Any, ...]) -> tuple[int, int]:
        db = self.db
        # An attestation is a person's word: synced to disk before the API answers, not
        # merely written to the WAL as probe results are.
        db.execute("PRAGMA synchronous=FULL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                revision = db.execute("UPDATE revision SET n = n + 1 RETURNING n").fetchone()[0]
                cursor = db.execute(
                    "INSERT INTO attestation"
                    " (checklist, item, by_name, note, at, fingerprint, token)"
                    " VALUES (?,?,?,?,?,?,?)",
                    row,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.execute("PRAGMA synchronous=NORMAL")
        return int(cursor.lastrowid or 0), int(revision)

    async def attestations(
        self, checklist: str | None, item: str | None, limit: int
    ) -> list[Attestation]:
        rows = await self._call(self._history, checklist, item, limit)
        return [attestation_of(row) for row in rows]

    def _history(self, checklist: str | None, item: str | None, limit: int) -> list[Any]:
        return self.db.execute(
            "SELECT id, checklist, item, by_name, note, at, fingerprint, token FROM attestation"
            " WHERE (?1 IS NULL OR checklist = ?1) AND (?2 IS NULL OR item = ?2)"
            " ORDER BY id DESC LIMIT ?3",
            (checklist, item, limit),
        ).fetchall()

    async def refresh(self) -> None:
        revision = await self._call(lambda: self.db.execute("SELECT n FROM revision").fetchone()[0])
        if revision == self._revision:
            return
        revision, latest = await self._call(self._latest)
        for row in latest:
            self._apply(attestation_of(row))
        self._revision = revision
