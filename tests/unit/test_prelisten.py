"""serve's early listen: the address known without loading the config, and the answers given
while the config loads (exporter/prelisten.py)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from exporter.prelisten import answer_until, bind, early_address

CONFIG = """\
# a comment
exporter:
  default_interval: 60s
  listen: {listen}
  state: sqlite:///./x.db
checklists:
  - name: web
    sections:
      - name: s
        items:
          - id: listen-port
            tcp: {{host: 127.0.0.1, port: 80}}
"""


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ('"127.0.0.1:9101"', ("127.0.0.1", 9101)),
        ("'[::1]:9102'", ("::1", 9102)),
        (":9103", ("0.0.0.0", 9103)),
        ("127.0.0.1:9104  # the port", ("127.0.0.1", 9104)),
    ],
)
def test_the_listen_address_is_read_from_the_exporter_block(
    listen: str, expected: tuple[str, int]
) -> None:
    assert early_address(CONFIG.format(listen=listen), None, {}) == expected


@pytest.mark.parametrize(
    "listen",
    [
        "${LISTEN}",  # a placeholder: only the loader knows its value
        "'${LISTEN:-127.0.0.1:9100}'",
        "*anchor",
        "127.0.0.1:99999",  # the loader's error, not ours
        "not-an-address",
    ],
)
def test_an_address_that_is_not_plainly_written_is_not_guessed(listen: str) -> None:
    assert early_address(CONFIG.format(listen=listen), None, {}) is None


def test_no_exporter_block_means_the_default_address() -> None:
    text = "checklists:\n  - name: web\n    sections: []\n"
    assert early_address(text, None, {}) == ("127.0.0.1", 9840)
    assert early_address("exporter:\n  state: sqlite://\n", None, {}) == ("127.0.0.1", 9840)


@pytest.mark.parametrize(
    "text",
    [
        '{"exporter": {"listen": "0.0.0.0:9100"}}',  # flow style (JSON)
        "exporter: {listen: '0.0.0.0:9100'}\n",
        "exporter:\n  listen: 0.0.0.0:9100\nexporter:\n  listen: 0.0.0.0:9101\n",
        "exporter:\n  listen: 0.0.0.0:9100\n  listen: 0.0.0.0:9101\n",
        "exporter:\n  tls:\n    listen: 0.0.0.0:9100\n",  # not the block's own key
        "exporter:\n  listen:\n    0.0.0.0:9100\n",
    ],
)
def test_an_ambiguous_file_is_loaded_first(text: str) -> None:
    assert early_address(text, None, {}) is None


def test_the_flag_and_the_environment_win_over_the_file() -> None:
    text = CONFIG.format(listen="0.0.0.0:9100")
    assert early_address(text, None, {"READINESS_LISTEN": "127.0.0.1:9200"}) == ("127.0.0.1", 9200)
    assert early_address(text, "127.0.0.1:9300", {"READINESS_LISTEN": "x:1"}) == ("127.0.0.1", 9300)
    assert early_address(text, None, {"readiness_listen": "127.0.0.1:9201"}) == ("127.0.0.1", 9201)


def test_an_address_in_use_is_left_to_serve_to_report() -> None:
    taken = bind("127.0.0.1", 0)
    assert taken is not None
    try:
        assert bind("127.0.0.1", taken.getsockname()[1]) is None
    finally:
        taken.close()


@pytest.fixture
def answering() -> Iterator[tuple[socket.socket, int]]:
    """A bound socket answered by answer_until in a thread until the test writes `done`."""
    sock = bind("127.0.0.1", 0)
    assert sock is not None
    read, write = os.pipe()
    thread = threading.Thread(target=answer_until, args=(sock, read))
    thread.start()
    try:
        yield sock, write
    finally:
        os.write(write, b"x")
        thread.join(5)
        os.close(read)
        os.close(write)
        sock.close()
    assert not thread.is_alive()


def ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return answer


def test_live_is_200_and_everything_else_503_while_loading(
    answering: tuple[socket.socket, int],
) -> None:
    port = answering[0].getsockname()[1]
    live = ask(port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert live.startswith(b"HTTP/1.1 200 OK\r\n")
    assert live.endswith(b'\r\n\r\n{"status":"ok"}')
    assert b"x-content-type-options: nosniff" in live
    head = ask(port, b"HEAD /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    for request in (
        b"GET /health/ready HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\r\n",
        b"POST /health/live HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    ):
        answer = ask(port, request)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), request
        assert answer.endswith(b'{"status":"not ready"}')


def test_a_request_in_pieces_is_answered_once_whole(answering: tuple[socket.socket, int]) -> None:
    port = answering[0].getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /health/li")
        conn.sendall(b"ve HTTP/1.1\r\n")
        conn.sendall(b"\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 200 OK")


def test_the_socket_is_handed_back_listening_and_blocking() -> None:
    sock = bind("127.0.0.1", 0)
    assert sock is not None
    read, write = os.pipe()
    os.write(write, b"done")
    try:
        answer_until(sock, read)
        assert sock.getblocking()
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, _ = sock.accept()  # still listening: the connection waited in the backlog
            conn.close()
    finally:
        sock.close()
        os.close(read)
        os.close(write)
