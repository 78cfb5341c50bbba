"""The HTTP edge against a running `serve`: no state change from a foreign origin or a form (a
real Chromium with a cached login tries), security headers on every answer, slow clients
closed while scrapes and probes go on, and no request of any shape answering 5xx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.browser import Browser
from tests.support.exporter import Exporter, wait_for
from tests.support.servers import QuietHandler

pytestmark = pytest.mark.slow

TOKENS = {
    "WS_ATTEST_TOKEN": "attest-secret-0123456789abcdef",
    "WS_ADMIN_TOKEN": "admin-secret-0123456789abcdef",
    "WS_READ_TOKEN": "read-secret-0123456789abcdef",
}
ATTEST = {"Authorization": f"Bearer {TOKENS['WS_ATTEST_TOKEN']}"}
ADMIN = {"Authorization": f"Bearer {TOKENS['WS_ADMIN_TOKEN']}"}
READ = {"Authorization": f"Bearer {TOKENS['WS_READ_TOKEN']}"}
JSON = {"Content-Type": "application/json"}
PARTNER = "https://dashboards.example.com"

CONFIG = """
exporter:
  state: "sqlite:///{dir}/state.db"
  allowed_origins: ["{partner}"]
  api_tokens:
    - {{name: oncall, token_env: WS_ATTEST_TOKEN, roles: [attest]}}
    - {{name: ops, token_env: WS_ADMIN_TOKEN, roles: [admin]}}
    - {{name: grafana, token_env: WS_READ_TOKEN, roles: [read]}}
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: on-call
            title: On-call rotation established
            manual: {{}}
            every: 30d
          - id: config-present
            title: The config file is there
            interval: 1s
            file: {{path: "{dir}/readiness.yaml"}}
"""


def attestations(exporter: Exporter) -> list[dict[str, object]]:
    response = exporter.get("/api/v1/attestations?checklist=app&item=on-call", headers=READ)
    assert response.status_code == 200, response.text
    found: list[dict[str, object]] = response.json()["attestations"]
    return found


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    directory = tmp_path_factory.mktemp("web-security")
    config = directory / "readiness.yaml"
    config.write_text(CONFIG.format(dir=directory, partner=PARTNER))
    proc = Exporter(
        config,
        env=TOKENS,
        args=("--web.header-timeout", "2", "--web.max-connections", "64"),
    )
    proc.start()
    wait_for(
        lambda: proc.value("readiness_item_passing", item="config-present") == 1.0,
        20,
        "the file probe to pass",
        proc,
    )
    yield proc
    if proc.proc is not None:
        proc.stop()


GOOD = {"checklist": "app", "item": "on-call", "by": "alice", "note": "rota in PD"}


# --- request forgery --------------------------------------------------------------------------
class _Attacker(QuietHandler):
    """Another origin's pages: each auto-submits a form to the exporter, as a hostile site
    would, counting on the browser's cached login."""

    target = ""

    def do_GET(self) -> None:
        # The classic JSON CSRF: a text/plain form whose one field's name and value concatenate
        # (name=value) into a JSON document.
        name = json.dumps({**GOOD, "by": "mallory", "note": "x"})[:-2]
        form = (
            f"<form method=POST action='{self.target}/api/v1/attestations' enctype='text/plain'>"
            f"<input name='{name}' value='\"}}'></form>"
            "<script>document.forms[0].submit()</script>"
        )
        self.reply(200, f"<!doctype html><body>{form}</body>".encode(), "text/html")


@pytest.fixture
def attacker(exporter: Exporter) -> Iterator[str]:
    handler = type("Attacker", (_Attacker,), {"target": exporter.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_foreign_page_cannot_attest_with_the_browsers_cached_login(
    exporter: Exporter, attacker: str, tmp_path: Path
) -> None:
    browser = Browser(tmp_path / "chromium-profile")
    try:
        # The on-call engineer logs in to /status (the browser keeps the Basic login) ...
        token = TOKENS["WS_ATTEST_TOKEN"]
        browser.goto(f"http://oncall:{token}@127.0.0.1:{exporter.port}/status")
        assert browser.wait_for("document.querySelectorAll('li.item').length") == 2
        # ... and attests through the page's own form: that must keep working.
        browser.evaluate(
            "(() => { const f = document.querySelector('form.attest');"
            " f.note.value = 'from the page'; f.requestSubmit(); })()"
        )
        outcome = browser.wait_for(
            "(o => !['', 'sending…'].includes(o.textContent) && o.textContent)"
            "(document.querySelector('form.attest output'))"
        )
        assert outcome == "attested"
        assert attestations(exporter)[0]["note"] == "from the page"
        count = len(attestations(exporter))

        # Then visits a hostile page on another origin, which posts a forged attestation.
        browser.goto(f"{attacker}/attack")
        answer = browser.wait_for(
            f"location.href.startsWith('{exporter.url}') && document.body"
            " && document.body.innerText"
        )
    finally:
        browser.close()
    assert "may not change state" in answer  # the form did reach the exporter, and was refused
    assert len(attestations(exporter)) == count
    assert all(a["by"] != "mallory" for a in attestations(exporter))


def test_state_changes_need_json_and_our_origin(exporter: Exporter) -> None:
    url = f"{exporter.url}/api/v1/attestations"
    body = json.dumps(GOOD)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**ATTEST, **({"Content-Type": content_type} if content_type else {})}
        response = httpx.post(url, content=body, headers=headers, timeout=5)
        assert response.status_code == 415, (content_type, response.text)

    def post(**headers: str) -> httpx.Response:
        return httpx.post(url, content=body, headers={**ATTEST, **JSON, **headers}, timeout=5)

    assert post(Origin="http://evil.example").status_code == 403
    assert post(Origin=f"http://127.0.0.1:{exporter.port + 1}").status_code == 403  # other port
    assert post(Origin=f"https://127.0.0.1:{exporter.port}").status_code == 403  # other scheme
    assert post(Origin="null").status_code == 403
    assert post(**{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert post(**{"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert post(Origin=exporter.url).status_code == 201
    assert post(Origin=PARTNER).status_code == 201  # exporter.allowed_origins
    assert post(**{"Sec-Fetch-Site": "same-origin"}).status_code == 201

    reload = f"{exporter.url}/-/reload"
    forged = httpx.post(
        reload, content="x=1", headers={**ADMIN, "Content-Type": "text/plain"}, timeout=5
    )
    assert forged.status_code == 415
    foreign = httpx.post(reload, headers={**ADMIN, "Origin": "http://evil.example"}, timeout=5)
    assert foreign.status_code == 403
    # curl -X POST and config reloaders send no body and no type; no browser sends that.
    assert httpx.post(reload, headers=ADMIN, timeout=5).status_code == 200


def test_every_answer_forbids_framing_and_sniffing(exporter: Exporter) -> None:
    checks = [
        ("GET", "/", {}),
        ("GET", "/metrics", {}),
        ("GET", "/health", {}),
        ("GET", "/status", {"Accept": "text/html"}),
        ("GET", "/status", READ),
        ("GET", "/static/status.js", {}),
        ("GET", "/nowhere", {}),
        ("POST", "/api/v1/attestations", {"Content-Type": "text/plain"}),
        ("POST", "/api/v1/attestations", {**JSON, "Origin": "http://evil.example"}),
    ]
    for method, path, headers in checks:
        response = httpx.request(method, f"{exporter.url}{path}", headers=headers, timeout=5)
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp.replace("style-src-attr 'unsafe-inline'", ""), path


# --- bodies and fuzz ----------------------------------------------------------------------------
def test_json_nested_2000_deep_is_a_422_not_a_500(exporter: Exporter) -> None:
    for body in (b"[" * 2000 + b"]" * 2000, b'{"a":' * 2000 + b"1" + b"}" * 2000):
        response = httpx.post(
            f"{exporter.url}/api/v1/attestations",
            content=body,
            headers={**ATTEST, **JSON},
            timeout=5,
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "body"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One kept-alive client: a new connection per example would make the fuzz slow."""
    with httpx.Client(timeout=5) as kept:
        yield kept


ROUTES = [
    "/",
    "/metrics",
    "/health",
    "/health/live",
    "/health/ready",
    "/status",
    "/static/status.js",
    "/api/v1/attestations",
    "/-/reload",
    "/api/v1/runs",
    "/api/v1/pings",
]
# Printable ASCII without surrounding blanks: what HTTP lets a client send as a header value.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


# Bodies close to what the API takes (attestations, run now, pings), so examples get past
# the JSON parsing to the checks of each field.
api_bodies = st.dictionaries(
    st.sampled_from(
        ["checklist", "item", "section", "by", "note", "status", "exit_code", "duration", "output"]
    ),
    st.sampled_from(["app", "ops", "on-call", "config-present", "start", "fail", "success"])
    | json_values,
    max_size=6,
).map(lambda v: json.dumps(v).encode())


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.sampled_from(ROUTES) | st.text(max_size=20).map(lambda t: "/" + t),
    query=st.dictionaries(st.sampled_from(["checklist", "item", "limit", "format"]), header_text),
    body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | api_bodies,
    headers=st.dictionaries(
        st.sampled_from(
            ["Content-Type", "Origin", "Accept", "X-CSRF-Token", "Sec-Fetch-Site", "Authorization"]
        ),
        header_text,
        max_size=4,
    ),
    token=st.sampled_from([None, ATTEST, ADMIN, READ]),
)
def test_no_request_makes_a_5xx(
    exporter: Exporter,
    client: httpx.Client,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    headers: dict[str, str],
    token: dict[str, str] | None,
) -> None:
    if path == "/-/reload":
        token = READ  # a reload per example would make the run slow, not more thorough
    try:
        response = client.request(
            method,
            f"{exporter.url}{path}",
            params=query,
            content=body if method not in ("GET", "HEAD") else None,
            headers={**headers, **(token or {})},
        )
    except httpx.InvalidURL:
        return
    assert response.status_code < 500, (method, path, response.status_code, response.text)


# --- slow clients -------------------------------------------------------------------------------
def test_slowloris_connections_are_closed_while_scrapes_and_probes_go_on(
    exporter: Exporter,
) -> None:
    """200 connections each sending one header line a second: with a 2 s header deadline and a
    cap of 64 connections, each is closed (by the deadline or by a newer one), /metrics keeps
    answering within a second, and the probe keeps passing."""
    sockets: list[socket.socket] = []
    start = time.monotonic()
    closed: dict[int, float] = {}
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
            sockets.append(sock)
        scrapes = []
        while time.monotonic() - start < 6 and len(closed) < len(sockets):
            for i, sock in enumerate(sockets):
                if i in closed:
                    continue
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                    if sock.recv(1) == b"":
                        closed[i] = time.monotonic() - start
                except BlockingIOError:
                    pass
                except OSError:
                    closed[i] = time.monotonic() - start
            began = time.monotonic()
            scrapes.append(exporter.value("readiness_item_passing", item="config-present"))
            assert time.monotonic() - began < 1.0, "a scrape took over a second"
            time.sleep(0.5)
    finally:
        for sock in sockets:
            sock.close()
    assert len(closed) == 200, f"{200 - len(closed)} slow connections still open after 6 s"
    assert max(closed.values()) < 5.0
    assert scrapes and all(passing == 1.0 for passing in scrapes)
    assert exporter.get("/health/live").status_code == 200
