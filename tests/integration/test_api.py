"""The write API over real HTTP against a running `serve`: every status code, the audit
history, /status behind `read`, /-/reload behind `admin`, and a property test of the body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.exporter import Exporter

pytestmark = pytest.mark.slow

TOKENS = {
    "I4_ATTEST_TOKEN": "attest-secret-0123456789abcdef",
    "I4_ADMIN_TOKEN": "admin-secret-0123456789abcdef",
    "I4_READ_TOKEN": "read-secret-0123456789abcdef",
}
ATTEST = {"Authorization": f"Bearer {TOKENS['I4_ATTEST_TOKEN']}"}
ADMIN = {"Authorization": f"Bearer {TOKENS['I4_ADMIN_TOKEN']}"}
READ = {"Authorization": f"Bearer {TOKENS['I4_READ_TOKEN']}"}
JSON = {"Content-Type": "application/json"}

CONFIG = """
exporter:
  state: "sqlite:///{dir}/state.db"
  api_tokens:
    - {{name: oncall, token_env: I4_ATTEST_TOKEN, roles: [attest]}}
    - {{name: ops, token_env: I4_ADMIN_TOKEN, roles: [admin]}}
    - {{name: grafana, token_env: I4_READ_TOKEN, roles: [read]}}
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: on-call-rotation
            title: On-call rotation established
            manual: {{}}
            every: 30d
          - id: self-metrics
            title: The exporter serves metrics
            interval: 1h
            tcp: {{host: 127.0.0.1, port: 1}}
"""


class Api(Exporter):
    """The exporter with one kept-alive client (a new httpx client costs ~90 ms of TLS setup,
    which would dominate the property test)."""

    client: httpx.Client

    def post(
        self, path: str, body: object = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST `body` as JSON (a state-changing request must say so, or it is refused)."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(
            f"{self.url}{path}", content=content, headers={**JSON, **(headers or {})}
        )


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    directory = tmp_path_factory.mktemp("api")
    config = directory / "readiness.yaml"
    config.write_text(CONFIG.format(dir=directory))
    proc = Api(config, env=TOKENS)
    proc.start()
    with httpx.Client(timeout=5) as proc.client:
        yield proc
    if proc.proc is not None:
        proc.stop()


def post(exporter: Api, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return exporter.post("/api/v1/attestations", body, headers)


GOOD = {"checklist": "app", "item": "on-call-rotation", "by": "alice", "note": "rota in PD"}


def test_an_attestation_is_recorded_audited_and_scraped(exporter: Api) -> None:
    assert exporter.value("readiness_item_passing", item="on-call-rotation") == 0.0
    response = post(exporter, GOOD, ATTEST)
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert recorded["by"] == "alice" and recorded["token"] == "oncall"
    assert recorded["at"].endswith("Z") and recorded["id"] >= 1

    assert exporter.value("readiness_item_passing", item="on-call-rotation") == 1.0
    due = exporter.value("readiness_item_due_timestamp_seconds", item="on-call-rotation")
    success = exporter.value(
        "readiness_item_last_success_timestamp_seconds", item="on-call-rotation"
    )
    assert due is not None and success is not None and due - success == 30 * 86400

    history = exporter.get("/api/v1/attestations?checklist=app&item=on-call-rotation", headers=READ)
    assert history.status_code == 200
    latest = history.json()["attestations"][0]
    assert latest == recorded


def test_go_live_is_declared_through_the_api(exporter: Api) -> None:
    assert exporter.value("readiness_checklist_live", checklist="app") == 0.0
    response = post(exporter, {"checklist": "app", "item": "go-live", "by": "lead"}, ADMIN)
    assert response.status_code == 201, response.text
    assert exporter.value("readiness_checklist_live", checklist="app") == 1.0
    status = exporter.get("/status", headers=READ).json()
    assert status["checklists"][0]["go_live"] == response.json()["at"]


def test_401_without_or_with_an_unknown_token(exporter: Api) -> None:
    for headers in (None, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        response = post(exporter, GOOD, headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert exporter.get("/api/v1/attestations").status_code == 401


def test_403_with_the_wrong_role(exporter: Api) -> None:
    response = post(exporter, GOOD, READ)
    assert response.status_code == 403
    assert "grafana lacks role attest" in response.json()["error"]
    reload = exporter.post("/-/reload", headers=ATTEST)
    assert reload.status_code == 403


def test_404_for_an_unknown_checklist_or_item(exporter: Api) -> None:
    assert post(exporter, {**GOOD, "checklist": "nope"}, ATTEST).status_code == 404
    response = post(exporter, {**GOOD, "item": "nope"}, ATTEST)
    assert response.status_code == 404
    assert "no item 'nope'" in response.json()["error"]


def test_413_for_a_body_over_64_kib(exporter: Api) -> None:
    big = {**GOOD, "note": "x" * (64 * 1024)}
    assert post(exporter, big, ATTEST).status_code == 413

    # Without a Content-Length (chunked), the limit holds while reading.
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 4096

    response = exporter.client.post(
        f"{exporter.url}/api/v1/attestations", content=chunks(), headers={**ATTEST, **JSON}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        ({"checklist": "app", "item": "on-call-rotation"}, "by"),
        ({**GOOD, "by": ""}, "by"),
        ({**GOOD, "by": 42}, "by"),
        ({**GOOD, "note": None}, "note"),
        ({**GOOD, "by": "a\u0000b"}, "by"),
        ({**GOOD, "extra": 1}, "extra"),
        ({**GOOD, "item": "self-metrics"}, "item"),
    ],
)
def test_422_names_the_field(exporter: Api, body: object, field: str) -> None:
    response = post(exporter, body, ATTEST)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_status_needs_read_while_metrics_and_health_stay_open(exporter: Api) -> None:
    assert exporter.get("/status").status_code == 401
    assert exporter.get("/status", headers=READ).status_code == 200
    assert exporter.get("/status", headers=ATTEST).status_code == 200
    for path in ("/metrics", "/health", "/health/live", "/health/ready"):
        assert exporter.get(path).status_code == 200, path
    assert exporter.get("/api/v1/attestations?limit=0", headers=READ).status_code == 422


def test_reload_needs_admin(exporter: Api) -> None:
    response = exporter.post("/-/reload", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"status": "reloaded"}
    assert exporter.post("/-/reload").status_code == 401


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
fields = st.sampled_from(["checklist", "item", "by", "note", "extra"])
any_text = st.text(
    alphabet=st.characters(exclude_categories=()) | st.characters(categories=["Cs"]), max_size=20
)
known = st.sampled_from(["app", "on-call-rotation", "go-live", "self-metrics", ""])
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(fields, known | json_values, max_size=5).map(lambda d: json.dumps(d).encode()),
    # Any code point, lone surrogates and control characters included (JSON escapes them).
    st.dictionaries(fields, any_text, max_size=5).map(lambda d: json.dumps({**GOOD, **d}).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_no_body_makes_a_500(exporter: Api, body: bytes) -> None:
    response = post(exporter, body, ATTEST)
    assert response.status_code in (201, 404, 422), (response.status_code, response.text)
    document = response.json()
    if response.status_code == 422:
        assert document["field"] and document["error"]


def test_the_config_names_a_token_whose_secret_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "readiness.yaml"
    config.write_text(CONFIG.format(dir=tmp_path))
    proc = Exporter(config, env={**TOKENS, "I4_READ_TOKEN": ""})
    with pytest.raises(AssertionError, match="I4_READ_TOKEN is not set"):
        proc.start(timeout=10)
