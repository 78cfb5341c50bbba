"""Real servers on loopback for the network probes: HTTP(S) with trustme certificates,
a closed port, a server that never answers and one whose accept queue is full."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from exporter.probes.base import ProbeContext

LOOPBACK = "127.0.0.1"


class _Routes(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event  # set at shutdown, so /slow does not outlive the test

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/ok":
            self._send(200, b"ready")
        elif path == "/unavailable":
            self._send(503, b"down for maintenance")
        elif path == "/json":
            document = {
                "status": "ok",
                "checks": {"db": {"up": True, "latency_ms": 3.5}},
                "items": [{"id": 7}, {"id": 8}],
                "version": None,
            }
            self._send(200, json.dumps(document).encode(), "application/json")
        elif path == "/headers":
            self._send(200, b"", headers={"X-Build": "1.2.3", "Cache-Control": "no-store"})
        elif path == "/redirect":
            self._send(302, b"", headers={"Location": "/ok"})
        elif path == "/loop":
            self._send(302, b"", headers={"Location": "/loop"})
        elif path == "/big":
            self._send(200, b"x" * 100_000)
        elif path == "/latin1":
            self._send(200, "café".encode("latin-1"), "text/plain; charset=iso-8859-1")
        elif path == "/slow":
            self.release.wait(10)
            self._send(200, b"late")
        else:
            self._send(404, b"not found")

    def do_POST(self) -> None:
        received = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        echo = {
            "method": self.command,
            "body": received.decode(),
            "authorization": self.headers.get("Authorization"),
        }
        self._send(201, json.dumps(echo).encode(), "application/json")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the probe may have hung up (timeout, body cap)
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """An HTTP server with the routes above on a free loopback port; yields its base URL."""
    release = threading.Event()
    handler = type("Routes", (_Routes,), {"release": release})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield f"{scheme}://{LOOPBACK}:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def server_context(ca: trustme.CA, *identities: str, **issue: Any) -> ssl.SSLContext:
    """A server-side context presenting a certificate the test CA issued for `identities`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*identities, **issue).configure_cert(context)
    return context


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def http_url() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture
def https_url(ca: trustme.CA) -> Iterator[str]:
    """HTTPS with a valid certificate for 127.0.0.1 and localhost, issued by `ca`."""
    with serve(server_context(ca, LOOPBACK, "localhost")) as url:
        yield url


@pytest.fixture
def expired_https_url(ca: trustme.CA) -> Iterator[str]:
    """HTTPS whose certificate (trusted CA, right name) expired ten days ago."""
    now = datetime.now(UTC)
    context = server_context(
        ca,
        LOOPBACK,
        "localhost",
        not_before=now - timedelta(days=100),
        not_after=now - timedelta(days=10),
    )
    with serve(context) as url:
        yield url


@pytest.fixture
def wrong_host_https_url(ca: trustme.CA) -> Iterator[str]:
    """HTTPS with a valid certificate for another name than the one the probe uses."""
    with serve(server_context(ca, "other.example.test")) as url:
        yield url


@pytest.fixture
def wildcard_https_url(ca: trustme.CA) -> Iterator[str]:
    """HTTPS with a certificate for *.example.test only."""
    with serve(server_context(ca, "*.example.test")) as url:
        yield url


@pytest.fixture
def tls12_https_url(ca: trustme.CA) -> Iterator[str]:
    """HTTPS with a valid certificate, speaking no newer protocol than TLS 1.2."""
    context = server_context(ca, LOOPBACK, "localhost")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with serve(context) as url:
        yield url


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound to find it free, then released."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections and never sends a byte: TLS handshakes and HTTP reads hang."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A listener that never accepts, its queue filled: the kernel drops new SYNs, so a
    connect hangs as it does behind a firewall that drops packets."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((LOOPBACK, port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


@pytest.fixture
async def ctx() -> AsyncIterator[ProbeContext]:
    """A probe context with a generous budget; its shared clients are closed afterwards."""
    context = ProbeContext(timeout=5)
    yield context
    await context.resources.aclose()
