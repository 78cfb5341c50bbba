"""HTTP routes: /metrics, /health*, /status (JSON, or HTML for browsers), the landing page and
the API; no domain logic here."""

from __future__ import annotations

import asyncio
import contextlib
import html
import signal
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from exporter import __version__
from exporter.config import Role
from exporter.daemon import Daemon
from exporter.evaluate import evaluate
from exporter.exposition import Exposition, wants_gzip
from exporter.lag import LagCollector
from exporter.web.api import Endpoint, protected
from exporter.web.api import routes as api_routes
from exporter.web.auth import csrf_token
from exporter.web.edge import Edge
from exporter.web.pages import STATUS_CSS, STATUS_JS, status_page, wants_html
from exporter.web.status import status_document
from exporter.web.webconfig import WebConfig

LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>readiness-exporter</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
<h1>readiness-exporter</h1><p>version {version}</p>
<ul><li><a href="metrics">metrics</a></li><li><a href="status">status</a></li>
<li><a href="health">health</a></li></ul></body></html>
"""


def _attest_enabled(daemon: Daemon) -> bool:
    """The page offers attesting when some token may attest (the API checks the token)."""
    return any(
        role in (Role.ATTEST, Role.ADMIN)
        for token in daemon.config.exporter.api_tokens
        for role in token.roles
    )


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


def _asset(text: str, media_type: str) -> Endpoint:
    async def asset(request: Request) -> Response:
        return Response(text, media_type=media_type, headers={"Cache-Control": "max-age=300"})

    return asset


def create_app(daemon: Daemon, web: WebConfig | None = None) -> Starlette:
    """The routes behind the edge (edge.py); `web` is the `--web.config.file`, if any."""
    exposition = Exposition(daemon, LagCollector(daemon.scheduler.lag))

    async def landing(request: Request) -> HTMLResponse:
        return HTMLResponse(LANDING.format(version=html.escape(__version__)))

    async def metrics(request: Request) -> Response:
        await daemon.refresh()
        gzip = wants_gzip(request.headers.get("accept-encoding", ""))
        body, content_type = exposition.render(request.headers.get("accept", ""), gzip=gzip)
        headers = {"Vary": "Accept-Encoding", **({"Content-Encoding": "gzip"} if gzip else {})}
        return Response(body, media_type=content_type, headers=headers)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        if daemon.started and await daemon.store.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def health(request: Request) -> JSONResponse:
        await daemon.refresh()
        views = evaluate(daemon.config, daemon.states(), daemon.clock.now())
        items = [i for v in views for i in v.items]
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "checklists": len(views),
                "items": len(items),
                "passing": sum(i.passing for i in items),
                "ready": all(v.ready for v in views),
            }
        )

    async def status(request: Request) -> Response:
        await daemon.refresh()
        now = daemon.clock.now()
        views = evaluate(daemon.config, daemon.states(), now)
        asked = request.query_params.get("format")
        if asked == "html" or (asked is None and wants_html(request.headers.get("accept", ""))):
            principal = getattr(request.state, "principal", None)
            attester = principal is not None and bool(principal.roles & {Role.ATTEST, Role.ADMIN})
            page = status_page(
                views,
                now,
                attest=_attest_enabled(daemon),
                attester=attester,
                csrf=csrf_token(principal.name) if principal is not None else "",
            )
            return HTMLResponse(page)
        return JSONResponse(status_document(views, now))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # `serve` starts the daemon before the server, so a state it cannot use ends in one
        # line and exit 3 instead of a traceback from inside the lifespan.
        owned = not daemon.started
        if owned:
            await daemon.start()
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task[bool]] = set()

        def on_sighup() -> None:
            task = loop.create_task(daemon.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
            if owned:
                await daemon.stop()

    return Starlette(
        routes=[
            Route("/", landing),
            Route("/metrics", metrics),
            Route("/health/live", live),
            Route("/health/ready", ready),
            Route("/health", health),
            Route("/status", _browser_login(protected(daemon, Role.READ, status))),
            Route("/static/status.css", _asset(STATUS_CSS, "text/css")),
            Route("/static/status.js", _asset(STATUS_JS, "text/javascript")),
            *(
                Route(path, fn, methods=methods)
                for path, (fn, methods) in api_routes(daemon).items()
            ),
        ],
        middleware=[
            Middleware(
                Edge,
                tokens=lambda: daemon.tokens,
                allowed_origins=lambda: daemon.config.exporter.allowed_origins,
                web=web,
            )
        ],
        lifespan=lifespan,
    )
