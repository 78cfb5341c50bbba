"""The write API's HTTP edge: token checks, the body size limit, and the mapping of domain
errors to status codes. The logic lives in auth.py, attestations.py and the daemon."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter import attestations
from exporter.attestations import MAX_BODY, Invalid, NotFound
from exporter.auth import Forbidden, Principal, Unauthorized
from exporter.config import Role
from exporter.daemon import Daemon
from exporter.state import OutcomeUnknown, StoreUnavailable

log = structlog.get_logger("exporter.api")

Endpoint = Callable[[Request], Awaitable[Response]]


class TooLarge(Exception):
    """A request body over MAX_BODY (HTTP 413)."""


def _error(status: int, message: str, **extra: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def protected(daemon: Daemon, role: Role, endpoint: Endpoint) -> Endpoint:
    """`endpoint` behind a token with `role`; domain errors become their status codes."""

    async def guarded(request: Request) -> Response:
        try:
            principal = daemon.tokens.authorize(request.headers.get("authorization"), role)
            request.state.principal = principal
            return await endpoint(request)
        except Unauthorized as exc:
            return _error(401, str(exc))
        except Forbidden as exc:
            return _error(403, str(exc))
        except TooLarge:
            return _error(413, f"the request body is larger than {MAX_BODY} bytes")
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


async def read_body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise TooLarge
    return bytes(body)


def routes(daemon: Daemon) -> dict[str, tuple[Endpoint, list[str]]]:
    """Path -> (endpoint, methods) of the API, for app.py to mount."""

    async def post_attestation(request: Request) -> Response:
        principal: Principal | None = request.state.principal
        parsed = attestations.parse_request(await read_body(request))
        recorded = await attestations.attest(
            daemon.store,
            daemon.config,
            parsed,
            principal.name if principal else None,
            daemon.clock.now(),
        )
        log.info(
            "attested",
            checklist=recorded.checklist,
            item=recorded.item,
            by=recorded.by,
            token=recorded.token,
        )
        return JSONResponse(attestations.document(recorded), status_code=201)

    async def list_attestations(request: Request) -> Response:
        query = request.query_params
        history = await daemon.store.attestations(
            attestations.parse_filter("checklist", query.get("checklist")),
            attestations.parse_filter("item", query.get("item")),
            attestations.parse_limit(query.get("limit")),
        )
        return JSONResponse({"attestations": [attestations.document(a) for a in history]})

    post = protected(daemon, Role.ATTEST, post_attestation)
    history = protected(daemon, Role.READ, list_attestations)

    async def attestations_endpoint(request: Request) -> Response:
        return await (post if request.method == "POST" else history)(request)

    async def reload(request: Request) -> Response:
        principal: Principal | None = request.state.principal
        log.info("reload_requested", token=principal.name if principal else None)
        if await daemon.reload():
            return JSONResponse({"status": "reloaded"})
        return JSONResponse({"status": "failed", "errors": daemon.reload_errors}, status_code=422)

    return {
        "/api/v1/attestations": (attestations_endpoint, ["GET", "POST"]),
        "/-/reload": (protected(daemon, Role.ADMIN, reload), ["POST"]),
    }
