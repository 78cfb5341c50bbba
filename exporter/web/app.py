"""HTTP routes: /metrics, /health*, /status (JSON, or HTML for browsers), the landing page, the
page's static files and the API, in one table; they read the services handed to create_app."""

from __future__ import annotations

import html
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from exporter import __version__
from exporter.exposition import wants_gzip
from exporter.results import ItemKey
from exporter.roles import Role
from exporter.web import api
from exporter.web.api import Endpoint, protected
from exporter.web.auth import csrf_token
from exporter.web.edge import Edge
from exporter.web.pages import static_file, status_page, wants_html
from exporter.web.services import Services, services
from exporter.web.status import history_summaries, status_document
from exporter.web.webconfig import WebConfig

LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>readiness-exporter</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
<h1>readiness-exporter</h1><p>version {version}</p>
<ul><li><a href="metrics">metrics</a></li><li><a href="status">status</a></li>
<li><a href="health">health</a></li></ul></body></html>
"""

STATIC_TYPES = {"status.css": "text/css", "status.js": "text/javascript"}
"""The page's files (package data under web/static/), with their types stated: the guess from
the file name varies with the platform's MIME table."""
_STATIC = {name: static_file(name).encode() for name in STATIC_TYPES}

GET = ["GET", "HEAD"]


async def landing(request: Request) -> Response:
    return HTMLResponse(LANDING.format(version=html.escape(__version__)))


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        return JSONResponse({"error": "not found"}, status_code=404)
    return Response(
        _STATIC[name], media_type=STATIC_TYPES[name], headers={"Cache-Control": "max-age=300"}
    )


async def metrics(request: Request) -> Response:
    gzip = wants_gzip(request.headers.get("accept-encoding", ""))
    body, content_type = await services(request).views.metrics(
        request.headers.get("accept", ""), gzip
    )
    headers = {"Vary": "Accept-Encoding", **({"Content-Encoding": "gzip"} if gzip else {})}
    return Response(body, media_type=content_type, headers=headers)


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    if await services(request).views.store_healthy():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready"}, status_code=503)


async def health(request: Request) -> Response:
    views = (await services(request).views.snapshot()).checklists
    items = [i for v in views for i in v.items]
    summary: dict[str, object] = {
        "status": "ok",
        "version": __version__,
        "checklists": len(views),
        "items": len(items),
        "passing": sum(i.passing for i in items),
        "ready": all(v.ready for v in views),
    }
    if blocked := sum(i.blocked for i in items):
        summary["blocked"] = blocked  # failing behind a dependency that is not passing
    if unconfigured := [i for i in items if i.item.unconfigured]:
        # What keeps an imported checklist from running, and what to set.
        summary["unconfigured"] = [
            {"checklist": i.checklist.name, "item": i.item.id, "set": list(i.item.unconfigured)}
            for i in unconfigured
        ]
    return JSONResponse(summary)


async def status(request: Request) -> Response:
    views, now = await services(request).views.snapshot()
    asked = request.query_params.get("format")
    if asked == "html" or (asked is None and wants_html(request.headers.get("accept", ""))):
        principal = getattr(request.state, "principal", None)
        attester = principal is not None and bool(principal.roles & {Role.ATTEST, Role.ADMIN})
        page = status_page(
            views,
            now,
            attest=services(request).access.may_attest,
            attester=attester,
            csrf=csrf_token(principal.name) if principal is not None else "",
            redactor=services(request).redactor,
            history=await _history(request, now),
        )
        return HTMLResponse(page)
    served = services(request)
    return JSONResponse(
        status_document(
            views, now, served.redactor, served.jobs.running(), await _history(request, now)
        )
    )


async def _history(request: Request, now: float) -> dict[ItemKey, dict[str, Any]] | None:
    """Each item's last changes and passing shares, when the store can tell."""
    served = services(request)
    recent = await served.audit.recent(now)
    return None if recent is None else history_summaries(recent, now, served.redactor)


def _browser_login(endpoint: Endpoint) -> Endpoint:
    """A browser refused /status is asked to log in: the token is the password, any user name."""

    async def endpoint_or_login(request: Request) -> Response:
        response = await endpoint(request)
        if response.status_code == 401 and wants_html(request.headers.get("accept", "")):
            response.headers["WWW-Authenticate"] = (
                'Basic realm="readiness-exporter", charset="UTF-8"'
            )
        return response

    return endpoint_or_login


ROUTES = [
    Route("/", landing, methods=GET),
    Route("/metrics", metrics, methods=GET),
    Route("/health/live", live, methods=GET),
    Route("/health/ready", ready, methods=GET),
    Route("/health", health, methods=GET),
    Route("/status", _browser_login(protected(Role.READ, status)), methods=GET),
    Route("/static/{name}", static, methods=GET),
    Route("/api/v1/attestations", protected(Role.READ, api.list_attestations), methods=GET),
    Route("/api/v1/attestations", protected(Role.ATTEST, api.post_attestation), methods=["POST"]),
    Route("/api/v1/history", protected(Role.READ, api.list_history), methods=GET),
    Route("/api/v1/waivers", protected(Role.READ, api.list_waivers), methods=GET),
    Route("/api/v1/waivers", protected(Role.ATTEST, api.post_waiver), methods=["POST"]),
    Route(
        "/api/v1/waivers/{id:int}/approve",
        protected(Role.ADMIN, api.approve_waiver),
        methods=["POST"],
    ),
    Route("/api/v1/waivers/{id:int}", protected(Role.ADMIN, api.revoke_waiver), methods=["DELETE"]),
    Route("/-/reload", protected(Role.ADMIN, api.reload), methods=["POST"]),
    Route("/api/v1/runs", protected(Role.ATTEST, api.post_runs), methods=["POST"]),
    Route("/api/v1/pings", protected(Role.ATTEST, api.post_ping), methods=["POST"]),
]


def create_app(served: Services, web: WebConfig | None = None) -> Starlette:
    """The routes behind the edge (edge.py), reading `served`; `web` is the
    `--web.config.file`, if any."""
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                Edge,
                tokens=lambda: served.access.tokens,
                allowed_origins=lambda: served.access.allowed_origins,
                web=web,
            )
        ],
    )
    app.state.services = served
    return app
