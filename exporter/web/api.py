"""The API's endpoints and their guard: token checks, the body size limit, and the mapping of
domain errors to status codes. The logic lives in auth.py, attestations.py and the services."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Literal

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter import attestations, pings, runs, waivers
from exporter.attestations import MAX_BODY, Invalid, NotFound
from exporter.roles import Role
from exporter.state import Conflict, OutcomeUnknown, StoreUnavailable
from exporter.times import parse_instant
from exporter.web.auth import Forbidden, Principal, Unauthorized, check_csrf, is_basic
from exporter.web.edge import SAFE_METHODS, WEB_USER
from exporter.web.services import services
from exporter.web.status import change_document, item_status

log = structlog.get_logger("exporter.web.api")

Endpoint = Callable[[Request], Awaitable[Response]]

MAX_DEPTH = 32
"""JSON nesting a body may have: parsing a deeper one would recurse without need (HTTP 422)."""
BODY_SECONDS = 10.0
"""A body must arrive within this: a client trickling bytes does not hold a request open."""
# Escapes are dropped first, so a string is `"[^"]*"`: every pattern here matches in linear time.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_JSON_TOKENS = re.compile(rb'"[^"]*"|[\[\]{}]')


class TooLarge(Exception):
    """A request body over MAX_BODY (HTTP 413)."""


class TooSlow(Exception):
    """A request body that did not arrive within BODY_SECONDS (HTTP 408)."""


def _error(status: int, message: str, **extra: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def protected(role: Role, endpoint: Endpoint) -> Endpoint:
    """`endpoint` behind a token with `role`; domain errors become their status codes."""

    async def guarded(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        try:
            principal = _principal(request, role)
            if (
                principal is not None
                and request.method not in SAFE_METHODS
                and is_basic(authorization)
            ):
                check_csrf(principal.name, request.headers.get("x-csrf-token"))
            request.state.principal = principal
            return await endpoint(request)
        except Unauthorized as exc:
            return _error(401, str(exc))
        except (Forbidden, waivers.SelfApproval) as exc:
            return _error(403, str(exc))
        except Conflict as exc:
            return _error(409, str(exc))
        except TooLarge:
            return _error(413, f"the request body is larger than {MAX_BODY} bytes")
        except TooSlow:
            return _error(408, f"the request body did not arrive within {BODY_SECONDS:g} s")
        except NotFound as exc:
            return _error(404, str(exc))
        except Invalid as exc:
            return _error(422, exc.message, field=exc.field)
        except OutcomeUnknown as exc:
            log.error("state_outcome_unknown", error=str(exc))
            return _error(
                503,
                "outcome unknown: the attestation may have been recorded;"
                " check GET /api/v1/attestations before retrying",
            )
        except StoreUnavailable as exc:
            log.error("state_unavailable", error=str(exc))
            return _error(503, "the state store is unavailable: nothing was recorded, retry")

    return guarded


def _principal(request: Request, role: Role) -> Principal | None:
    """Who may do `role`: an API token's principal, or for reads a user of the web config's
    Basic auth (who may read everything the server shows, as with /metrics)."""
    try:
        return services(request).access.tokens.authorize(request.headers.get("authorization"), role)
    except Unauthorized:
        web_user = request.scope.get("state", {}).get(WEB_USER)
        if role is Role.READ and web_user:
            return Principal(web_user, frozenset({Role.READ}))
        raise


async def read_body(request: Request) -> bytes:
    """The body, at most MAX_BODY bytes arriving within BODY_SECONDS, nested at most MAX_DEPTH
    deep if it is JSON: bounded before anything parses it."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise TooLarge
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise TooLarge
    except TimeoutError:
        raise TooSlow from None
    if _depth(bytes(body)) > MAX_DEPTH:
        raise Invalid("body", f"nested deeper than {MAX_DEPTH} levels")
    return bytes(body)


def _depth(body: bytes) -> int:
    """The deepest nesting of [ and { outside JSON strings, in one linear pass."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(_ESCAPE.sub(b"", body)):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


async def post_attestation(request: Request) -> Response:
    """POST /api/v1/attestations (attest role)."""
    principal: Principal | None = request.state.principal
    parsed = attestations.parse_request(await read_body(request))
    # Masked before it is stored: the records are append-only, so a secret pasted into a note
    # would stay in them, and show again once a rotation drops it from the config's secrets.
    redactor = services(request).redactor
    parsed = parsed.model_copy(
        update={"by": redactor.text(parsed.by), "note": redactor.text(parsed.note)}
    )
    recorded = await services(request).attestations.attest(
        parsed, principal.name if principal else None
    )
    log.info(
        "attested",
        checklist=recorded.checklist,
        item=recorded.item,
        by=recorded.by,
        token=recorded.token,
    )
    return JSONResponse(
        attestations.document(recorded, services(request).redactor), status_code=201
    )


async def list_attestations(request: Request) -> Response:
    """GET /api/v1/attestations (read role): the audit history, newest first."""
    query = request.query_params
    history = await services(request).attestations.history(
        attestations.parse_filter("checklist", query.get("checklist")),
        attestations.parse_filter("item", query.get("item")),
        attestations.parse_limit(query.get("limit")),
    )
    redactor = services(request).redactor
    return JSONResponse({"attestations": [attestations.document(a, redactor) for a in history]})


def parse_time(name: str, text: str | None) -> float | None:
    """A `since=` or `until=` parameter: an ISO 8601 date or time (UTC unless it says), or
    Unix seconds; empty means no bound."""
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        raise Invalid(name, f"{text!r} is not a date (2026-12-01, 2026-12-01T12:00:00Z)") from None


async def list_history(request: Request) -> Response:
    """GET /api/v1/history (read role): state changes and audit events, in chain order."""
    query = request.query_params
    changes = await services(request).audit.history(
        attestations.parse_filter("checklist", query.get("checklist")),
        attestations.parse_filter("item", query.get("item")),
        parse_time("since", query.get("since")),
        parse_time("until", query.get("until")),
        attestations.parse_limit(query.get("limit")),
    )
    return JSONResponse(
        {"history": [change_document(c, services(request).redactor) for c in changes]}
    )


def _token(request: Request) -> str | None:
    principal: Principal | None = request.state.principal
    return principal.name if principal else None


async def post_waiver(request: Request) -> Response:
    """POST /api/v1/waivers (attest role): a requested waiver (approved at once when approval
    is turned off)."""
    parsed = waivers.parse_request(await read_body(request))
    redactor = services(request).redactor  # masked before it is stored, as a note is
    parsed = parsed.model_copy(
        update={"by": redactor.text(parsed.by), "reason": redactor.text(parsed.reason)}
    )
    audit = services(request).audit
    waiver = await audit.request_waiver(parsed, _token(request))
    log.info("waiver_requested", id=waiver.id, checklist=waiver.checklist, item=waiver.item)
    return JSONResponse(
        waivers.document(waiver, audit.now(), services(request).redactor), status_code=201
    )


async def list_waivers(request: Request) -> Response:
    """GET /api/v1/waivers (read role): every waiver with its status, newest first."""
    query = request.query_params
    audit = services(request).audit
    found = await audit.waivers(
        attestations.parse_filter("checklist", query.get("checklist")),
        attestations.parse_filter("item", query.get("item")),
        attestations.parse_limit(query.get("limit")),
    )
    now, redactor = audit.now(), services(request).redactor
    return JSONResponse({"waivers": [waivers.document(w, now, redactor) for w in found]})


async def approve_waiver(request: Request) -> Response:
    """POST /api/v1/waivers/{id}/approve (admin role, not the token or person that asked)."""
    return await _decide(request, "approve")


async def revoke_waiver(request: Request) -> Response:
    """DELETE /api/v1/waivers/{id} (admin role)."""
    return await _decide(request, "revoke")


async def _decide(request: Request, decision: Literal["approve", "revoke"]) -> Response:
    audit = services(request).audit
    token = _token(request) or ""
    waiver = await audit.decide_waiver(request.path_params["id"], decision, token)
    log.info(f"waiver_{decision}d", id=waiver.id, token=token)
    return JSONResponse(waivers.document(waiver, audit.now(), services(request).redactor))


async def reload(request: Request) -> Response:
    """POST /-/reload (admin role)."""
    principal: Principal | None = request.state.principal
    log.info("reload_requested", token=principal.name if principal else None)
    errors = await services(request).control.reload()
    if not errors:
        return JSONResponse({"status": "reloaded"})
    return JSONResponse({"status": "failed", "errors": errors}, status_code=422)


async def post_runs(request: Request) -> Response:
    """POST /api/v1/runs (attest role): run the checklist's, section's or item's probes now
    and answer with their results."""
    principal: Principal | None = request.state.principal
    parsed = runs.parse_request(await read_body(request))
    log.info(
        "run_now",
        checklist=parsed.checklist,
        section=parsed.section,
        item=parsed.item,
        token=principal.name if principal else None,
    )
    served = services(request)
    outcome = await served.jobs.run_now(parsed)
    checklist = outcome.checklist
    return JSONResponse(
        {
            "checklist": checklist.checklist.name,
            "ready": checklist.ready,
            "score": round(checklist.score, 4),
            "results": [
                {"section": s.section.name, **item_status(v, served.redactor)}
                for s in checklist.sections
                for v in s.items
                if v.key in outcome.ran
            ],
            "skipped": [{"item": key.item, "why": why} for key, why in outcome.skipped],
        }
    )


async def post_ping(request: Request) -> Response:
    """POST /api/v1/pings (attest role): a job's start, success or fail on its `ping` item."""
    principal: Principal | None = request.state.principal
    parsed = pings.parse_request(await read_body(request))
    log.info(  # who reported: the audit trail of a job's pings, as of runs and attestations
        "ping",
        checklist=parsed.checklist,
        item=parsed.item,
        status=parsed.status,
        token=principal.name if principal else None,
    )
    result = await services(request).jobs.ping(parsed)
    answer: dict[str, object] = {
        "checklist": parsed.checklist,
        "item": parsed.item,
        "status": parsed.status,
        "token": principal.name if principal else None,
    }
    if result is not None:
        answer |= {"passing": result.passing, "reason": result.reason.value}
    return JSONResponse(answer, status_code=202 if result is None else 201)
