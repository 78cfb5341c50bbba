"""Job pings (POST /api/v1/pings, `readiness-exporter run`): the request, the `ping` item it
reports to, and the result a finished run makes. A failed run fails the item at once; a run
that started and never finished within the item's `timeout` fails it as `timeout` (the daemon
watches that); no success within `every` + `grace` lapses it, as any recurring item."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exporter.attestations import Invalid, checklist_named, item_named, json_request
from exporter.conditions import failing
from exporter.reasons import Reason
from exporter.results import PING, Facts, ItemKey, Result
from exporter.text import without_hidden

if TYPE_CHECKING:
    from exporter.config import Config, Item

OUTPUT_BYTES = 4096
"""A run's output is kept to its last 4 KiB: the end of a log says how it ended."""


class PingRequest(BaseModel):
    """`{checklist, item, status: start|success|fail, exit_code, duration, output}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checklist: str = Field(min_length=1, max_length=100)
    item: str = Field(min_length=1, max_length=100)
    status: Literal["start", "success", "fail"]
    exit_code: int | None = Field(default=None, ge=-255, le=255)
    duration: float | None = Field(default=None, ge=0, le=366 * 86400)
    output: str = ""

    @field_validator("duration")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a number of seconds")
        return value


def parse_request(body: bytes) -> PingRequest:
    """The request in a JSON body, or Invalid naming the field at fault."""
    return json_request(body, PingRequest, ": {checklist, item, status, ...}", _whole_seconds)


def _whole_seconds(data: dict[str, Any]) -> None:
    """A duration sent as a whole number is a float for the strict model (not a bool)."""
    if isinstance(data.get("duration"), int) and not isinstance(data["duration"], bool):
        data["duration"] = float(data["duration"])


def ping_item(config: Config, checklist: str, item: str) -> Item:
    """The `ping` item named; NotFound, or Invalid for an item of another kind."""
    match = item_named(checklist_named(config, checklist), item)
    if match.kind != PING:
        raise Invalid(
            "item", f"{checklist}/{item} is a {match.kind} item: only ping items take pings"
        )
    return match


def tail(output: str) -> str:
    """The last OUTPUT_BYTES of the output, cut at a character boundary."""
    data = output.encode("utf-8", "replace")
    if len(data) <= OUTPUT_BYTES:
        return output
    return "…" + data[-OUTPUT_BYTES:].decode("utf-8", "ignore")


def finished(item: Item, request: PingRequest, now: float) -> Result:
    """The result of a run that reported success or fail: judged by the item's conditions
    (`exit_code == 0` unless it says otherwise), and a `fail` fails whatever they say. Not yet
    masked: the daemon masks it (the output may hold a secret the job printed) as any run."""
    code = request.exit_code
    if code is None:
        code = 0 if request.status == "success" else 1
    duration = request.duration or 0.0
    facts: Facts = {
        "status": request.status,
        "exit_code": code,
        "duration": round(duration, 6),
        # What a job printed reaches /status as evidence people trust: no NUL, no escape
        # sequence, no bidi override that shows it in another order than it was written.
        "output": tail(without_hidden(request.output)),
    }
    failed = list(failing(item.conditions, facts))
    if request.status == "fail" and not failed:
        failed.append(f"status == 'success' (got 'fail', exit code {code})")
    passing = not failed
    reason = Reason.OK if passing else Reason.CONDITION
    return Result(passing, reason, now - duration, duration, facts, tuple(failed))


def timed_out(key: ItemKey, started_at: float, timeout: float) -> Result:
    """The result of a run that started and did not report within the item's timeout."""
    return Result(
        False,
        Reason.TIMEOUT,
        started_at,
        timeout,
        {"status": "start"},
        (),
        f"{key} started and sent no success or fail within {timeout:g}s",
    )
