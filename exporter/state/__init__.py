"""Durable state: the latest result, last success and attestations per item, restored on restart.

One `Store` interface, chosen by the `state:` URL; SQLite is the embedded default, PostgreSQL
lets replicas share one state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from exporter.history import Change
from exporter.results import Attestation, ItemKey, ItemState, Result, Waiver

if TYPE_CHECKING:
    from exporter.redact import Redactor


class StoreUnavailable(Exception):
    """The database did not take a write (down, unreachable, disk full): for the API a 503."""


class OutcomeUnknown(StoreUnavailable):
    """The write's COMMIT was sent but its answer never came (the connection died, the deadline
    passed): it may have been recorded. For the API a 503 that says so, not "nothing recorded"."""


class Conflict(Exception):
    """The write does not fit what is recorded (a waiver already approved or revoked): 409."""


class StateError(Exception):
    """The state cannot be used at all (not a database file, read-only, its folder missing,
    held by another daemon, unreachable): the CLI's exit 3 with this one line."""


class Snapshot(NamedTuple):
    """The audit records as one moment of the store had them (Store.snapshot)."""

    head: tuple[int, str]
    history: list[Change]
    attestations: list[Attestation]
    waivers: list[Waiver]


class Store(Protocol):
    version: int
    """Bumped on every change, so readers can cache what they rendered from the state."""
    store_name: str
    """The `store` label of readiness_state_write_errors_total: sqlite or postgresql."""
    write_errors: int
    """Writes the store could not take (readiness_state_write_errors_total)."""
    fault: str | None
    """What is wrong with the store (None while healthy): /health/ready answers 503 meanwhile."""

    async def open(self, exclusive: bool = False) -> None:
        """Connects, creates or migrates the schema, and loads the state into memory; with
        `exclusive` (serve), refuses a state another daemon holds. StateError when unusable."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True while the backing database answers within the ping deadline and (SQLite) the
        file is the one opened and intact (for /health/ready and the daemon's watchdog)."""

    async def record(self, key: ItemKey, result: Result) -> None:
        """Stores a run's result; a passing one also moves the item's last success. While the
        database is unavailable the result still shows (in memory) and a warning is logged."""

    async def track(self, keys: Iterable[ItemKey], now: float) -> None:
        """Notes when items were first seen (the base of a new recurring item's due time)."""

    async def attest(self, attestation: Attestation) -> Attestation:
        """Records an attestation, durably committed before it returns (with its id);
        StoreUnavailable when it could not be."""

    async def attestations(
        self, checklist: str | None, item: str | None, limit: int
    ) -> list[Attestation]:
        """The audit history, newest first; StoreUnavailable when it cannot be read."""

    async def append(self, changes: Sequence[Change], durable: bool = False) -> list[Change]:
        """Seals `changes` into the history chain, in order, and returns those recorded: a
        state record equal to the item's last recorded state is left out (replicas see the
        same change). `durable`: synced before it returns. StoreUnavailable when not recorded."""

    async def history(
        self,
        checklist: str | None,
        item: str | None,
        since: float | None,
        until: float | None,
        limit: int,
        prior: bool = False,
    ) -> list[Change]:
        """The newest `limit` history records, in chain order; with `prior` (and `since`),
        first each item's last state record before `since`, the state it entered the period
        in."""

    async def history_head(self) -> tuple[int, str]:
        """The id and hash of the newest record appended to the chain, as the store keeps
        them apart from the records ((0, "") before the first): a check of the chain's end."""

    async def snapshot(self, limit: int) -> Snapshot:
        """The chain's head, the newest `limit` history records, attestations and waivers,
        read in one snapshot: what `evidence --verify` checks against each other, with no
        write of a running daemon landing between two of the reads."""

    async def prune(self, before: float) -> int:
        """Retention: removes the history records older than `before` (the only deletion),
        but never the newest one, which the head names."""

    async def request_waiver(self, waiver: Waiver) -> Waiver:
        """Records a waiver (approved already when its `approved_at` is set) and its history
        event, durably; StoreUnavailable when it could not be."""

    async def decide_waiver(
        self, id_: int, decision: Literal["approve", "revoke"], by: str, at: float
    ) -> Waiver:
        """Approves or revokes a waiver, once; Conflict when it is already decided that way
        (or revoked), KeyError when there is no such waiver."""

    async def waivers(
        self, checklist: str | None, item: str | None, limit: int, id_: int | None = None
    ) -> list[Waiver]:
        """Every waiver (or the one with `id_`), newest first."""

    async def refresh(self) -> None:
        """Picks up attestations other processes wrote (the CLI, replicas): one cheap read of
        a change counter, a reload only when it moved. Called before every scrape."""

    def states(self) -> Mapping[ItemKey, ItemState]:
        """The in-memory view read at scrape time; never blocks on I/O."""

    def changed_since(self, mark: int | None) -> tuple[list[ItemKey] | None, int]:
        """The keys whose state was replaced since `mark` (None: unknown, compare them all)
        and the mark to pass next time."""

    async def set_ping_start(self, key: ItemKey, at: float | None) -> None:
        """Notes that a ping item's job started at `at` (None: it finished, or is forgotten),
        so a restarted daemon still times out a run that started before it. A write that
        cannot be made is counted and logged, as a result's."""

    def ping_starts(self) -> Mapping[ItemKey, float]:
        """The started, unfinished ping runs as the store held them when it opened."""


def open_store(url: str, redactor: Redactor | None = None) -> Store:
    """The store for a `state:` URL, as SQLAlchemy spells them: `sqlite:///relative.db`,
    `sqlite:////absolute/path.db`, `sqlite:///:memory:`; `postgresql://user@host:5432/db`.
    `redactor` masks the config's secrets in the errors a database server sends back."""
    if url.startswith("sqlite://"):
        from exporter.state.sqlite import SqliteStore

        path = url.removeprefix("sqlite://")
        return SqliteStore(path.removeprefix("/") or ":memory:")
    if url.startswith(("postgresql://", "postgres://")):
        from exporter.state.postgres import PostgresStore

        return PostgresStore(url, redactor=redactor)
    raise ValueError(
        f"unsupported state URL {url!r}: use sqlite:///path/to/state.db"
        " or postgresql://user@host:5432/db"
    )
