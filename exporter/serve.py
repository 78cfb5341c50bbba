"""`serve`'s process: the daemon, the web edge it feeds (through views and services, never the
daemon itself), the listening socket, and the signals: SIGHUP reloads, SIGTERM and SIGINT stop
gracefully.

uvicorn runs through its public API: `Server.serve(sockets=...)` on a socket bound here, so the
address is ours (or a clear error) before anything serves, and a client that connects early
waits in the listen backlog instead of being refused; nobody polls for "started". Our SIGTERM
and SIGINT handlers are installed first: uvicorn swaps its own in while it serves, restores
ours after its graceful shutdown and re-raises the signal to them (its cooperative signal
handling, Kludex/uvicorn#1600, uvicorn >= 0.29), and ours end the process normally (exit 0)
instead of by the signal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Mapping, Sequence

import structlog
import uvicorn
from starlette.applications import Starlette

from exporter import pings, runs
from exporter.attestations import AttestationService, NotFound
from exporter.audit import AuditService
from exporter.config import Role
from exporter.daemon import Daemon
from exporter.evaluate import evaluate
from exporter.exposition import Exposition
from exporter.lag import LagCollector
from exporter.memory import settle_collector
from exporter.pings import PingRequest
from exporter.results import ItemKey, Result
from exporter.runs import RunRequest
from exporter.web.app import create_app
from exporter.web.auth import Tokens
from exporter.web.services import RunOutcome, Services, Snapshot
from exporter.web.webconfig import WebConfig

BACKLOG = 2048
"""Connections the kernel queues before uvicorn accepts them (uvicorn's default)."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ListenError(Exception):
    """The listen address cannot be bound (taken, or not an address of this host)."""


log = structlog.get_logger("exporter.serve")


class DaemonViews:
    """The web edge's read model, access rules and reload, over a daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.exposition = Exposition(daemon, LagCollector(daemon.scheduler.lag))

    async def snapshot(self) -> Snapshot:
        await self.daemon.refresh()
        now = self.daemon.clock.now()
        return Snapshot(evaluate(self.daemon.config, self.daemon.states(), now), now)

    async def store_healthy(self) -> bool:
        return self.daemon.started and await self.daemon.store.ping()

    async def metrics(self, accept: str, gzip: bool) -> tuple[bytes, str]:
        await self.daemon.refresh()
        return self.exposition.render(accept, gzip=gzip)

    @property
    def tokens(self) -> Tokens:
        return self.daemon.tokens

    @property
    def allowed_origins(self) -> Sequence[str]:
        return self.daemon.config.exporter.allowed_origins

    @property
    def may_attest(self) -> bool:
        return any(
            role in (Role.ATTEST, Role.ADMIN)
            for token in self.daemon.config.exporter.api_tokens
            for role in token.roles
        )

    async def reload(self) -> list[str]:
        if await self.daemon.reload():
            return []
        return self.daemon.reload_errors or ["the config could not be reloaded"]


class DaemonJobs:
    """Run now and job pings (POST /api/v1/runs, /api/v1/pings), over a daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def run_now(self, request: RunRequest) -> RunOutcome:
        selection = runs.select(self.daemon.config, request)
        await self.daemon.run_now(selection.runnable)
        now = self.daemon.clock.now()
        views = evaluate(self.daemon.config, self.daemon.states(), now)
        checklist = next((v for v in views if v.checklist.name == selection.checklist), None)
        if checklist is None:  # a reload removed it while the probes ran
            raise NotFound(f"no checklist named {selection.checklist!r} any more")
        return RunOutcome(checklist, frozenset(selection.runnable), selection.skipped)

    async def ping(self, request: PingRequest) -> Result | None:
        item = pings.ping_item(self.daemon.config, request.checklist, request.item)
        return await self.daemon.ping(ItemKey(request.checklist, request.item), item, request)

    def running(self) -> Mapping[ItemKey, float]:
        return self.daemon.running()


def web_app(daemon: Daemon, web: WebConfig | None = None) -> Starlette:
    """The web edge over `daemon`; `web` is the `--web.config.file`, if any."""
    views = DaemonViews(daemon)
    attestations = AttestationService(daemon.store, lambda: daemon.config, daemon.clock)
    jobs = DaemonJobs(daemon)
    audit = AuditService(daemon.store, lambda: daemon.config, daemon.clock)
    return create_app(
        Services(views, views, attestations, views, daemon.redactor, jobs, audit), web
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port; ListenError naming the address when it cannot."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


async def run(daemon: Daemon, server: uvicorn.Server, bound: socket.socket | None = None) -> None:
    """Opens the state, binds the listen address (or takes `bound`, bound before the config
    was loaded), serves, and starts the jobs beside it (the socket listens first, so a client
    waits in the backlog rather than being refused; /health/ready answers once they are
    scheduled); serves until SIGTERM/SIGINT; SIGHUP
    reloads the config meanwhile. StateError or ListenError when it cannot start (the state
    first: a second daemon on the same state says so)."""
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()

    def stop() -> None:
        server.should_exit = True

    async def reload() -> None:
        await started.wait()  # a SIGHUP while the daemon starts reloads once it has
        await daemon.reload()

    def on_sighup() -> None:
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    async def schedule() -> None:
        # The socket listens already: a client that connects while the jobs are scheduled
        # waits in the backlog, so nothing needs to know when uvicorn has started.
        await daemon.start()
        settle_collector()
        started.set()

    handled = {signal.SIGHUP: on_sighup, **dict.fromkeys(STOP_SIGNALS, stop)}
    for sig, handler in handled.items():
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)
    scheduling: asyncio.Task[None] | None = None
    try:
        await daemon.open()
        try:
            sock = bound or listen(server.config.host, server.config.port)
            log.info("listening", address=_address(sock), pid=os.getpid())
            scheduling = loop.create_task(schedule())
            scheduling.add_done_callback(lambda task: _stop_if_failed(task, server))
            await server.serve(sockets=[sock])
        finally:
            for task in (*reloads, *([scheduling] if scheduling else [])):
                task.cancel()
            await daemon.stop()
    finally:
        for sig in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _stop_if_failed(scheduling: asyncio.Task[None], server: uvicorn.Server) -> None:
    """A daemon that could not start its jobs must not serve on as if it might."""
    if not scheduling.cancelled() and (exc := scheduling.exception()) is not None:
        log.error("start_failed", error=f"{type(exc).__name__}: {exc}")
        server.should_exit = True


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
