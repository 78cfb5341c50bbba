"""What the web edge reads and asks for, handed in when the app is made: a read model of the
checklists, who may do what, the attestations, and the reload. The edge never holds the daemon,
so no route can reach the scheduler, the runner or a probe."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from starlette.requests import Request

from exporter.attestations import AttestationRequest
from exporter.evaluate import ChecklistView
from exporter.history import Change
from exporter.pings import PingRequest
from exporter.redact import Redactor
from exporter.results import Attestation, ItemKey, Result, Waiver
from exporter.runs import RunRequest
from exporter.waivers import WaiverRequest
from exporter.web.auth import Tokens


class Snapshot(NamedTuple):
    """Every checklist judged at one moment."""

    checklists: list[ChecklistView]
    now: float


class Views(Protocol):
    """The read model behind /status, /health and /metrics."""

    async def snapshot(self) -> Snapshot:
        """The checklists as the store has them now (attestations made elsewhere included)."""

    async def store_healthy(self) -> bool:
        """Whether the state is open and answers (GET /health/ready)."""

    async def metrics(self, accept: str, gzip: bool) -> tuple[bytes, str]:
        """The exposition body in the format `accept` asks for, and its content type."""


class Access(Protocol):
    """Who may do what; read per request, so a reload changes it."""

    @property
    def tokens(self) -> Tokens: ...

    @property
    def allowed_origins(self) -> Sequence[str]: ...

    @property
    def may_attest(self) -> bool:
        """Some token may attest: the page then offers attesting."""


class Attestations(Protocol):
    """Recording and listing attestations, validated against the config in use."""

    async def attest(self, request: AttestationRequest, token: str | None) -> Attestation: ...

    async def history(
        self, checklist: str | None, item: str | None, limit: int
    ) -> list[Attestation]: ...


class RunOutcome(NamedTuple):
    """What a run-now request did: the checklist judged after the runs, the items that ran, and
    those left out with why."""

    checklist: ChecklistView
    ran: frozenset[ItemKey]
    skipped: tuple[tuple[ItemKey, str], ...]


class Jobs(Protocol):
    """Work the edge asks the daemon for: running items now, and recording job pings."""

    async def run_now(self, request: RunRequest) -> RunOutcome:
        """Runs the items the request names (NotFound, Invalid as runs.select says)."""

    async def ping(self, request: PingRequest) -> Result | None:
        """Records a job's ping on its `ping` item: the run's result, or None for `start`."""

    def running(self) -> Mapping[ItemKey, float]:
        """Ping items whose job started and has not reported yet, with when it started."""


class Audit(Protocol):
    """Item history: the API's records, and the status page's recent changes per item."""

    async def history(
        self,
        checklist: str | None,
        item: str | None,
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[Change]: ...

    async def recent(self, now: float) -> list[Change] | None:
        """The last 30 days of records (None: the store cannot answer)."""

    def now(self) -> float: ...

    async def request_waiver(self, request: WaiverRequest, token: str | None) -> Waiver: ...

    async def decide_waiver(
        self, id_: int, decision: Literal["approve", "revoke"], token: str
    ) -> Waiver: ...

    async def waivers(
        self, checklist: str | None, item: str | None, limit: int
    ) -> list[Waiver]: ...


class Control(Protocol):
    async def reload(self) -> list[str]:
        """Re-reads the config; the errors that kept the old one running, or none."""


@dataclass(frozen=True)
class Services:
    views: Views
    access: Access
    attestations: Attestations
    control: Control
    redactor: Redactor
    """The daemon's: masks its config's secrets in every page and document the edge sends."""
    jobs: Jobs
    audit: Audit


def services(request: Request) -> Services:
    """The services the app was made with (create_app puts them in the app's state)."""
    found: Services = request.app.state.services
    return found
