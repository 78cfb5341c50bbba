"""`/health/live` while `serve` still loads its config (issue 15: within 1 s of spawning at
10,000 items, when loading takes a second or more).

The listen address is known before the config is loaded when `--listen` or
`READINESS_LISTEN` gives it, or when a plain scan of the file finds `listen:` in its top-level
`exporter:` block (or no such block: the default). The socket is bound then, and while the
config loads in its forked child (exporter/forkload.py) the parent, idle otherwise, answers on
it with one `selectors` loop: `GET /health/live` 200, every other request 503 (the daemon is
not ready). Then the socket is handed to uvicorn, which serves the real app on it.

Not done with `--web.config.file`: its TLS or basic auth is the real app's to speak.
Nothing changes for a config that turns out bad (its errors and exit code are the loader's),
nor for an address that cannot be bound early (nothing is bound; `serve` binds later and
reports the error as before, after the state's own errors). The scan is a hint only: when
the loaded config's address differs, the early socket is closed and `serve` binds the right
one."""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
from collections.abc import Mapping

DEFAULT_LISTEN = "127.0.0.1:9840"
BACKLOG = 2048
"""As exporter.serve.BACKLOG (uvicorn's default), without importing the web stack first."""
MAX_HEAD = 8192
"""Bytes of a request's head read before it is answered 503 anyway."""

_LISTEN = re.compile(r"""^(\[[0-9a-fA-F:]+\]|[^:\s]*):(\d{1,5})$""")
_BLOCK = re.compile(r"^exporter:[ \t]*(?:#.*)?$", re.MULTILINE)
_KEY = re.compile(
    r"""^([ ]+)listen:[ ]*(?:"([^"\\$]*)"|'([^'$]*)'|([^\s#'"$&*!|>]+))[ ]*(?:#.*)?$"""
)

_JSON = b"content-type: application/json\r\n"
_COMMON = (
    b"x-frame-options: DENY\r\nx-content-type-options: nosniff\r\n"
    b"referrer-policy: no-referrer\r\nconnection: close\r\n"
)
LIVE = b"HTTP/1.1 200 OK\r\n" + _JSON + _COMMON + b"content-length: 15\r\n\r\n" + b'{"status":"ok"}'
NOT_READY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    + _JSON
    + _COMMON
    + b"retry-after: 1\r\ncontent-length: 22\r\n\r\n"
    + b'{"status":"not ready"}'
)


def early_address(
    config_text: str, override: str | None, environ: Mapping[str, str]
) -> tuple[str, int] | None:
    """(host, port) `serve` will listen on, when it is known without loading the config;
    None when unsure (the config is then loaded first, as before)."""
    listen = override
    if listen is None:
        named = [v for k, v in environ.items() if k.upper() == "READINESS_LISTEN"]
        listen = named[0] if len(named) == 1 else None
        if len(named) > 1:
            return None
    if listen is None:
        listen = _scanned(config_text)
    if listen is None:
        return None
    match = _LISTEN.fullmatch(listen)
    if match is None or int(match[2]) > 65535:
        return None
    return match[1].strip("[]") or "0.0.0.0", int(match[2])  # noqa: S104


def _scanned(text: str) -> str | None:
    """`exporter.listen` as plainly written in the file; the default when the file has no
    top-level `exporter:` block; None for anything less plain (flow style, anchors, several
    blocks or keys, a placeholder)."""
    first = next((s for line in text.split("\n") if (s := line.strip()) and s[0] != "#"), "")
    if "\t" in text or first.startswith(("{", "[", "%")):
        return None
    blocks = _BLOCK.findall(text)
    if not blocks:
        return None if re.search(r"exporter[\"']?\s*:", text) else DEFAULT_LISTEN
    if len(blocks) > 1:
        return None
    block = text[_BLOCK.search(text).end() :]  # type: ignore[union-attr]
    lines = []
    for line in block.split("\n")[1:]:
        if line and not line[0].isspace() and not line.startswith("#"):
            break  # the next top-level key
        lines.append(line)
    indents = {
        len(line) - len(line.lstrip(" "))
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    }
    if not indents:
        return None
    top = min(indents)
    found = [m for line in lines if (m := _KEY.match(line)) and len(m[1]) == top]
    mentions = sum("listen" in line for line in lines)
    if len(found) > 1 or mentions != len(found):
        return None
    if not found:
        return DEFAULT_LISTEN
    return found[0][2] or found[0][3] or found[0][4]


def bind(host: str, port: int) -> socket.socket | None:
    """A listening socket on host:port, or None (serve binds later and says why not)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError:
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        return None
    return sock


def answer_until(sock: socket.socket, done: int) -> None:
    """Answers on `sock` until the file descriptor `done` is readable (the child's pipe), then
    returns with the socket listening and blocking as it was; connections still reading
    their request are closed (their client retries, as for a restart)."""
    sock.setblocking(False)
    pending: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        selector.register(done, selectors.EVENT_READ)
        selector.register(sock, selectors.EVENT_READ)
        try:
            while True:
                events = selector.select()
                if any(key.fd == done for key, _ in events):
                    return
                for key, _ in events:
                    if key.fileobj is sock:
                        with contextlib.suppress(OSError):
                            conn, _ = sock.accept()
                            conn.setblocking(False)
                            pending[conn] = b""
                            selector.register(conn, selectors.EVENT_READ)
                        continue
                    conn = key.fileobj  # type: ignore[assignment]
                    try:
                        chunk = conn.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    head = pending[conn] + chunk
                    if chunk and b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
                        pending[conn] = head
                        continue
                    if chunk:
                        with contextlib.suppress(OSError):
                            conn.send(_answer(head))
                    selector.unregister(conn)
                    del pending[conn]
                    conn.close()
        finally:
            for conn in pending:
                conn.close()
            sock.setblocking(True)


def _answer(head: bytes) -> bytes:
    line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(line) == 3 and line[0] in (b"GET", b"HEAD") and line[1] == b"/health/live":
        return LIVE if line[0] == b"GET" else LIVE[: LIVE.index(b"\r\n\r\n") + 4]
    return NOT_READY
