"""The embedded SQLite store: WAL mode, one writer thread, every write committed at once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from exporter.reasons import Reason
from exporter.results import ItemKey, ItemState, Result

SCHEMA_VERSION = 1
_SCHEMA = """
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
"""


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self.version = 0
        self._states: dict[ItemKey, ItemState] = {}
        # sqlite3 connections are not thread-safe; one worker thread owns this one.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        await self._call(self._open)
        rows = await self._call(self._load)
        for row in rows:
            self._states[ItemKey(row[0], row[1])] = _state(row)
        self.version += 1

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise RuntimeError(
                f"state {self.path} has schema {version}, newer than this exporter's "
                f"{SCHEMA_VERSION}: upgrade the exporter or use another state file"
            )
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._db = db

    def _load(self) -> list[tuple[Any, ...]]:
        assert self._db is not None
        return self._db.execute(
            "SELECT checklist, item, passing, reason, started_at, duration, facts, failed, message,"
            " last_success, first_seen FROM item_state"
        ).fetchall()

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            await self._call(lambda: self._db.execute("SELECT 1").fetchone() if self._db else None)
        except sqlite3.Error:
            return False
        return True

    async def record(self, key: ItemKey, result: Result) -> None:
        old = self._states.get(key, ItemState())
        last_success = result.started_at if result.passing else old.last_success
        first_seen = old.first_seen if old.first_seen is not None else result.started_at
        row = (
            key.checklist,
            key.item,
            int(result.passing),
            result.reason.value,
            result.started_at,
            result.duration,
            json.dumps(result.facts, default=str),
            json.dumps(result.failed),
            result.message,
            last_success,
            first_seen,
        )
        await self._call(self._write, row)
        self._states[key] = ItemState(result, last_success, first_seen)
        self.version += 1

    def _write(self, row: tuple[Any, ...]) -> None:
        assert self._db is not None
        self._db.execute(
            "INSERT INTO item_state VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(checklist, item) DO UPDATE SET passing=excluded.passing,"
            " reason=excluded.reason, started_at=excluded.started_at, duration=excluded.duration,"
            " facts=excluded.facts, failed=excluded.failed, message=excluded.message,"
            " last_success=excluded.last_success, first_seen=excluded.first_seen",
            row,
        )

    async def track(self, keys: Iterable[ItemKey], now: float) -> None:
        new = [k for k in keys if self._states.get(k, ItemState()).first_seen is None]
        if not new:
            return
        await self._call(self._track, [(k.checklist, k.item, now) for k in new])
        for key in new:
            self._states[key] = replace(self._states.get(key, ItemState()), first_seen=now)
        self.version += 1

    def _track(self, rows: list[tuple[str, str, float]]) -> None:
        assert self._db is not None
        with self._db:
            self._db.executemany(
                "INSERT INTO item_state (checklist, item, first_seen) VALUES (?,?,?)"
                " ON CONFLICT(checklist, item) DO UPDATE SET first_seen=excluded.first_seen"
                " WHERE item_state.first_seen IS NULL",
                rows,
            )

    def states(self) -> Mapping[ItemKey, ItemState]:
        return self._states


def _state(row: tuple[Any, ...]) -> ItemState:
    (
        _,
        _,
        passing,
        reason,
        started_at,
        duration,
        facts,
        failed,
        message,
        last_success,
        first_seen,
    ) = row
    result = None
    if reason is not None:
        result = Result(
            passing=bool(passing),
            reason=Reason(reason),
            started_at=started_at,
            duration=duration,
            facts=json.loads(facts or "{}"),
            failed=tuple(json.loads(failed or "[]")),
            message=message or "",
        )
    return ItemState(result, last_success, first_seen)
