"""Waivers: an item declared not applicable (or its risk accepted) until a date, asked for by
one person and approved by another admin. The request's validation, the rules (no expiry past
`exporter.max_waiver`, no self-approval) and how a waiver reads; shared by the API and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from exporter.attestations import (
    REQUEST,
    Invalid,
    Name,
    NotFound,
    Person,
    checklist_named,
    item_named,
    json_request,
    plain_lines,
    plain_text,
)
from exporter.results import GO_LIVE_ITEM, Waiver
from exporter.state import Store
from exporter.times import iso, parse_instant
from exporter.units import parse_duration

if TYPE_CHECKING:
    # Types only: the config models are built from the probe registry, which the web edge
    # never loads.
    from exporter.config import Config, Item
    from exporter.redact import Redactor


class SelfApproval(Exception):
    """The approving token is the one that asked for the waiver, or is named as the person who
    asked (HTTP 403)."""


class WaiverRequest(BaseModel):
    """The body of POST /api/v1/waivers."""

    model_config = REQUEST

    checklist: Name
    item: Name
    reason: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(plain_lines)]
    by: Person
    expires: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(plain_text)]
    """An ISO 8601 date or time, or a span from now (`30d`)."""


def parse_request(body: bytes) -> WaiverRequest:
    """The request in a JSON body, or Invalid naming the first field at fault."""
    return json_request(body, WaiverRequest, "with checklist, item, reason, by, expires")


def expiry(text: str, now: float, config: Config) -> float:
    """When a waiver asked for with `expires` ends: after now, at most `max_waiver` ahead."""
    try:
        ends = now + parse_duration(text).total_seconds()
    except ValueError:
        try:
            ends = parse_instant(text)
        except ValueError:
            raise Invalid(
                "expires",
                f"{text!r} is not a date (2027-03-01, 2027-03-01T12:00:00Z) or span (30d)",
            ) from None
    limit = config.exporter.max_waiver.total_seconds()
    if ends <= now:
        raise Invalid("expires", f"expires {_shown(ends, text)} is not in the future")
    if ends > now + limit:
        raise Invalid(
            "expires",
            f"expires {_shown(ends, text)} is more than exporter.max_waiver"
            f" ({limit / 86400:g} days) ahead",
        )
    return ends


def _shown(ends: float, text: str) -> str:
    """The time asked for, as the API writes times; as given when no date can hold it."""
    try:
        return str(iso(ends))
    except (OverflowError, OSError, ValueError):
        return repr(text)


def resolve(config: Config, checklist: str, item: str) -> Item:
    hint = f" ({GO_LIVE_ITEM} is declared, not waived)" if item == GO_LIVE_ITEM else ""
    return item_named(checklist_named(config, checklist), item, hint)


async def request(
    store: Store, config: Config, body: WaiverRequest, token: str | None, now: float
) -> Waiver:
    """Records the waiver, durably; in effect at once when approval is turned off."""
    item = resolve(config, body.checklist, body.item)
    ends = expiry(body.expires, now, config)
    approved = not config.exporter.waivers_need_approval
    return await store.request_waiver(
        Waiver(
            checklist=body.checklist,
            item=body.item,
            reason=body.reason,
            by=body.by,
            requested_at=now,
            expires=ends,
            fingerprint=item.fingerprint,
            token=token,
            approved_by=(token or body.by) if approved else None,
            approved_at=now if approved else None,
        )
    )


# The largest id either store can hold (SQLite INTEGER and PostgreSQL bigint are 64-bit signed).
MAX_ID = 2**63 - 1


async def decide(
    store: Store,
    id_: int,
    decision: Literal["approve", "revoke"],
    token: str,
    now: float,
) -> Waiver:
    """Approves (by an admin other than the one who asked: not the requesting token, nor the
    person named in its `by`) or revokes a waiver."""
    if not 0 < id_ <= MAX_ID:
        raise NotFound(f"no waiver {id_}")
    found = next(iter(await store.waivers(None, None, 1, id_)), None)
    if found is None:
        raise NotFound(f"no waiver {id_}")
    if decision == "approve" and asked_by(found, token):
        through = f" (token {found.token})" if found.token else ""
        raise SelfApproval(
            f"waiver {id_} was asked for by {found.by}{through}: {token} may not approve it,"
            " another admin must"
        )
    try:
        return await store.decide_waiver(id_, decision, token, now)
    except KeyError:
        raise NotFound(f"no waiver {id_}") from None


def asked_by(waiver: Waiver, approver: str) -> bool:
    """Whether the approving token's name is who asked for the waiver: the token it was asked
    with, or the person it names in `by` (a person approves as their token's name, so one
    asking through a shared token in their own name does not approve it with their own)."""
    return _person(approver) in {_person(waiver.by), _person(waiver.token or "")}


def _person(name: str) -> str:
    return " ".join(name.split()).casefold()


def status(waiver: Waiver, now: float) -> str:
    if waiver.revoked_at is not None:
        return "revoked"
    if waiver.approved_at is None:
        return "requested"
    return "expired" if now >= waiver.expires else "approved"


def document(waiver: Waiver, now: float, redactor: Redactor) -> dict[str, Any]:
    """A waiver as the API shows it."""
    return {
        "id": waiver.id,
        "checklist": waiver.checklist,
        "item": waiver.item,
        # Masked again on the way out, as an attestation's `by` and note: a record written
        # before masking on write (or before a secret joined the config) is never edited.
        "reason": redactor.text(waiver.reason),
        "by": redactor.text(waiver.by),
        "token": waiver.token,
        "requested_at": iso(waiver.requested_at),
        "expires": iso(waiver.expires),
        "approved_by": redactor.optional(waiver.approved_by),
        "approved_at": iso(waiver.approved_at),
        "revoked_by": redactor.optional(waiver.revoked_by),
        "revoked_at": iso(waiver.revoked_at),
        "fingerprint": waiver.fingerprint,
        "status": status(waiver, now),
    }
