"""How `serve` runs uvicorn so slow or many clients cannot starve the daemon: a deadline for
each request's headers, an idle timeout, and a connection cap that leaves file descriptors to
the probes."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from typing import Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0
"""A client must send a request's headers within this of connecting or of its last response."""
IDLE_SECONDS = 5
"""A kept-alive connection with no new request is closed after this (uvicorn's keep-alive)."""
FD_RESERVE = 64
"""Descriptors kept out of the connection cap: the store, logs, listening sockets, and more."""
FD_PER_PROBE = 4
"""Descriptors a probe in flight may hold (a socket, or a subprocess's three pipes)."""
MAX_CONNECTIONS = 4096

Peer = tuple[str, int]


def raise_fd_limit() -> int:
    """Raises the soft limit on open files to the hard one (as Go's runtime does) and
    returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(fd_limit: int, max_concurrency: int) -> int:
    """Client connections allowed at once: what the fd limit leaves after the probes' budget."""
    budget = fd_limit - FD_RESERVE - FD_PER_PROBE * max_concurrency
    return max(8, min(MAX_CONNECTIONS, budget))


class ConnectionGuard:
    """Tracks every client connection. One that has not sent a request's headers within
    `header_seconds` (of connecting, or of its last response) is closed. At `max_connections`
    a new connection closes the oldest one still waiting for headers (a slow client), or is
    itself refused when every connection is busy with a request: a scrape always gets in while
    slow clients hold the slots.

    It sees connections through the public asyncio.Protocol methods of uvicorn's HTTP protocol
    and requests through ASGI (`scope["client"]` is the connection's peer address)."""

    def __init__(self, header_seconds: float, max_connections: int) -> None:
        self.header_seconds = header_seconds
        self.max_connections = max_connections
        self._open: dict[Peer, asyncio.BaseTransport] = {}
        self._waiting: dict[Peer, asyncio.TimerHandle] = {}
        """Connections waiting for a request's headers, oldest first, with their deadline."""
        self.closed_slow = 0
        self.refused = 0

    def protocol(self) -> type[asyncio.Protocol]:
        """uvicorn's HTTP/1.1 protocol, reporting to this guard (for uvicorn.Config's http=)."""
        guard = self

        class Guarded(H11Protocol):
            guard_peer: Peer | None = None

            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                self.guard_peer = _peer(transport)
                guard.opened(self.guard_peer, transport)

            def connection_lost(self, exc: Exception | None) -> None:
                guard.lost(self.guard_peer)
                super().connection_lost(exc)

        return Guarded

    def opened(self, peer: Peer | None, transport: asyncio.BaseTransport) -> None:
        if peer is None:
            return
        if len(self._open) >= self.max_connections:
            if self._waiting:
                self._close(next(iter(self._waiting)))
            else:
                self.refused += 1
                transport.close()
                return
        self._open[peer] = transport
        self._wait(peer)

    def lost(self, peer: Peer | None) -> None:
        if peer is None:
            return
        self._open.pop(peer, None)
        if (deadline := self._waiting.pop(peer, None)) is not None:
            deadline.cancel()

    def request_started(self, peer: Peer) -> None:
        if (deadline := self._waiting.pop(peer, None)) is not None:
            deadline.cancel()

    def response_done(self, peer: Peer) -> None:
        if peer in self._open:
            self._wait(peer)

    def _wait(self, peer: Peer) -> None:
        if (old := self._waiting.pop(peer, None)) is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._waiting[peer] = loop.call_later(self.header_seconds, self._expire, peer)

    def _expire(self, peer: Peer) -> None:
        self.closed_slow += 1
        self._close(peer)

    def _close(self, peer: Peer) -> None:
        transport = self._open.pop(peer, None)
        if (deadline := self._waiting.pop(peer, None)) is not None:
            deadline.cancel()
        if transport is not None:
            transport.close()

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """`app`, telling the guard when each request starts and its response ends.

        uvicorn's proxy-header middleware runs inside the guard (server_options turns off
        uvicorn's own), so the guard keys requests on the connection's real peer, not on the
        X-Forwarded-For a local reverse proxy sends."""
        # uvicorn and starlette type ASGI apart; the callable is the same.
        app = cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, app), trusted_hosts="127.0.0.1"))

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            client = scope.get("client")
            if scope["type"] != "http" or not client:
                await app(scope, receive, send)
                return
            peer = (str(client[0]), int(client[1]))
            self.request_started(peer)

            async def send_and_track(message: Message) -> None:
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    self.response_done(peer)

            await app(scope, receive, send_and_track)

        return guarded


def _peer(transport: asyncio.BaseTransport | None) -> Peer | None:
    info = transport.get_extra_info("peername") if transport is not None else None
    if not isinstance(info, tuple) or len(info) < 2:
        return None
    return str(info[0]), int(info[1])


def server_options(guard: ConnectionGuard, tls: dict[str, Any]) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the guard and TLS (webconfig.uvicorn_tls)."""
    protocol: Callable[..., asyncio.Protocol] = guard.protocol()
    return {
        "http": protocol,
        "timeout_keep_alive": IDLE_SECONDS,
        "proxy_headers": False,  # applied inside the guard instead (ConnectionGuard.asgi)
        # Bounds the headers' size (h11's default, stated): with the deadline, a slow or
        # endless header costs at most this much memory and time.
        "h11_max_incomplete_event_size": 16 * 1024,
        **tls,
    }
