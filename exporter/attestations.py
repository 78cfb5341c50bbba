"""Attesting manual items and declaring go-live: the request's validation, the item it names,
the record written to the store, and the audit history. Shared by the API and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from exporter.clock import Clock
from exporter.redact import Redactor
from exporter.results import GO_LIVE_ITEM, MANUAL, PING, Attestation
from exporter.state import Store
from exporter.text import visible, visible_lines
from exporter.times import iso

if TYPE_CHECKING:
    from exporter.config import Checklist, Config, Item

MAX_BODY = 64 * 1024
"""Bytes: a larger request body is refused (413) before it is parsed."""
HISTORY_LIMIT = 1000
RequestT = TypeVar("RequestT", bound=BaseModel)


class Invalid(Exception):
    """A request that cannot be used (HTTP 422); `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(Exception):
    """No such checklist or item (HTTP 404)."""


def plain_text(value: str, multiline: bool = False) -> str:
    """Text every store keeps as is (PostgreSQL refuses NUL), a log shows on one line and a
    reader sees as stored: no control, bidi or zero-width characters (a spoofed `by`), but
    newlines and tabs in a note."""
    return visible_lines(value) if multiline else visible(value)


def plain_lines(value: str) -> str:
    """plain_text of a note or reason: newlines and tabs allowed."""
    return plain_text(value, multiline=True)


REQUEST = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
"""A person's request (an attestation, a waiver): strict, its text fields stripped."""
Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(plain_text)]
"""A checklist or item a person's request names."""
Person = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(plain_text)]
"""Who makes a request (`by`)."""


class AttestationRequest(BaseModel):
    """The body of POST /api/v1/attestations."""

    model_config = REQUEST

    checklist: Name
    item: Name
    by: Person
    note: Annotated[str, Field(max_length=4000), AfterValidator(plain_lines)] = ""


def json_request(
    body: bytes,
    model: type[RequestT],
    shape: str,
    prepare: Callable[[dict[str, Any]], None] | None = None,
) -> RequestT:
    """A JSON body as a `model` (strict), or Invalid naming the first field at fault: "body"
    when it is not JSON or not an object (`shape` says which object is expected). `prepare`
    may adjust the object first."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("body", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Invalid("body", f"must be a JSON object {shape}")
    if prepare is not None:
        prepare(data)
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise Invalid(field, str(error["msg"]).lower().removeprefix("value error, ")) from None


def parse_request(body: bytes) -> AttestationRequest:
    """The request in a JSON body, or Invalid naming the first field at fault."""
    return json_request(body, AttestationRequest, "with checklist, item, by and note")


@dataclass(frozen=True)
class Target:
    """What an attestation is about: a manual item, or a checklist's go-live."""

    checklist: str
    item: str
    fingerprint: str


def checklist_named(config: Config, name: str) -> Checklist:
    """The checklist a request names; NotFound (naming those there are) otherwise."""
    found = next((c for c in config.checklists if c.name == name), None)
    if found is None:
        names = ", ".join(c.name for c in config.checklists)
        raise NotFound(f"no checklist named {name!r} (have: {names})")
    return found


def item_named(checklist: Checklist, item: str, hint: str = "") -> Item:
    """The item a request names in `checklist`; NotFound (with `hint`) otherwise."""
    match = next((i for s in checklist.sections for i in s.items if i.id == item), None)
    if match is None:
        raise NotFound(f"checklist {checklist.name!r} has no item {item!r}{hint}")
    return match


def resolve(config: Config, checklist: str, item: str) -> Target:
    """The manual item (or `go-live`) named; NotFound or Invalid otherwise."""
    found = checklist_named(config, checklist)
    if item == GO_LIVE_ITEM:
        return Target(checklist, item, GO_LIVE_ITEM)
    match = item_named(found, item)
    if match.kind != MANUAL:
        raise Invalid(
            "item",
            (
                f"{checklist}/{item} is a ping item (its job reports in: POST /api/v1/pings)"
                if match.kind == PING
                else f"{checklist}/{item} is probed ({match.kind})"
            )
            + f", not manual: only manual items and {GO_LIVE_ITEM} are attested",
        )
    return Target(checklist, item, match.attested_fingerprint)


async def attest(
    store: Store, config: Config, request: AttestationRequest, token: str | None, now: float
) -> Attestation:
    """Records the attestation; it is durable once this returns."""
    target = resolve(config, request.checklist, request.item)
    return await store.attest(
        Attestation(
            checklist=target.checklist,
            item=target.item,
            by=request.by,
            at=now,
            fingerprint=target.fingerprint,
            note=request.note,
            token=token,
        )
    )


class AttestationService:
    """Attestations against the config in use (`config` is read per call, so a reload counts)
    and the store; the API's attestation service."""

    def __init__(self, store: Store, config: Callable[[], Config], clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    async def attest(self, request: AttestationRequest, token: str | None) -> Attestation:
        return await attest(self.store, self.config(), request, token, self.clock.now())

    async def history(
        self, checklist: str | None, item: str | None, limit: int
    ) -> list[Attestation]:
        return await self.store.attestations(checklist, item, limit)


def document(attestation: Attestation, redactor: Redactor) -> dict[str, Any]:
    """An attestation as the API shows it."""
    return {
        "id": attestation.id,
        "checklist": attestation.checklist,
        "item": attestation.item,
        # Free text, masked on the way out too (a record is never edited, and may predate the
        # masking on write or a secret the config gained since): a note may hold a pasted
        # command line with its password, a name field whatever was typed into it.
        "by": redactor.text(attestation.by),
        "note": redactor.text(attestation.note),
        "at": iso(attestation.at),
        "fingerprint": attestation.fingerprint,
        "token": attestation.token,
    }


def parse_filter(name: str, text: str | None) -> str | None:
    """A `checklist=` or `item=` query parameter; empty means no filter."""
    if not text:
        return None
    try:
        return plain_text(text)
    except ValueError as exc:
        raise Invalid(name, str(exc)) from None


def parse_limit(text: str | None) -> int:
    if text is None:
        return 100
    if not text.isdigit() or not 1 <= int(text) <= HISTORY_LIMIT:
        raise Invalid("limit", f"must be a whole number from 1 to {HISTORY_LIMIT}")
    return int(text)
