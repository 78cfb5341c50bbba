"""`serve`'s process: the daemon, the web edge it feeds (through views and services, never the
daemon itself), and the signals around them: SIGHUP reloads, SIGTERM and SIGINT stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette

from exporter.attestations import AttestationService
from exporter.config import Role
from exporter.daemon import Daemon
from exporter.evaluate import evaluate
from exporter.exposition import Exposition
from exporter.lag import LagCollector
from exporter.web.app import create_app
from exporter.web.auth import Tokens
from exporter.web.services import Services, Snapshot
from exporter.web.webconfig import WebConfig


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


def web_app(daemon: Daemon, web: WebConfig | None = None) -> Starlette:
    """The web edge over `daemon`; `web` is the `--web.config.file`, if any."""
    views = DaemonViews(daemon)
    attestations = AttestationService(daemon.store, lambda: daemon.config, daemon.clock)
    return create_app(Services(views, views, attestations, views), web)


async def run(daemon: Daemon, server: uvicorn.Server) -> None:
    """Opens the state and starts the jobs, then serves until SIGTERM/SIGINT; SIGHUP reloads
    the config meanwhile."""
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
        await server.serve()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGHUP)
        await daemon.stop()
