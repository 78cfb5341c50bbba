"""`check --url` judges, here, the state a daemon's /status shows: the round trip from views to
the /status document and back to views keeps every item's verdict and the checklist's."""

from __future__ import annotations

import json
import threading
import warnings
from http.server import ThreadingHTTPServer

import pytest

from exporter.evaluate import evaluate
from exporter.loader import ConfigError, parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.remote import RemoteError, report, states
from exporter.results import Attestation, ItemKey, ItemState, Result
from exporter.web.status import status_document
from tests.support.servers import QuietHandler

NOW = 1_800_000_000.0
DAY = 86400.0
TEXT = """
checklists:
  - name: app
    ready_min_score: 0.5
    sections:
      - name: ops
        items:
          - {id: up, title: Up, severity: critical, tcp: {host: 127.0.0.1, port: 1}}
          - {id: down, title: Down, tcp: {host: 127.0.0.1, port: 2}, depends_on: [up]}
          - {id: never, title: Never ran, tcp: {host: 127.0.0.1, port: 3}}
          - {id: daily, title: Daily, every: 1d, file: {path: /srv/x}}
          - {id: stale, title: Stale daily, every: 1d, file: {path: /srv/y}}
          - {id: rota, title: Rota, manual: {}}
          - {id: old-rota, title: Old rota, manual: {}}
"""


def test_the_verdicts_survive_the_round_trip_through_status() -> None:
    config = parse_config(TEXT).config
    items = {i.id: i for i in config.checklists[0].sections[0].items}

    def run(passing: bool, at: float = NOW - 60) -> Result:
        return Result(passing, Reason.OK if passing else Reason.CONNECT, at, 0.01, {"x": 1})

    def attested(item: str, current: bool) -> Attestation:
        fingerprint = items[item].fingerprint if current else "changed"
        return Attestation("app", item, "alice", NOW - DAY, fingerprint, "done")

    stored = {
        ItemKey("app", "up"): ItemState(run(True), NOW - 60, NOW - 9 * DAY),
        ItemKey("app", "down"): ItemState(run(False), None, NOW - 9 * DAY),
        ItemKey("app", "daily"): ItemState(run(True), NOW - 60, NOW - 9 * DAY),
        ItemKey("app", "stale"): ItemState(run(False), None, NOW - 3 * DAY),  # lapsed
        ItemKey("app", "rota"): ItemState(None, None, NOW - 9 * DAY, attested("rota", True)),
        ItemKey("app", "old-rota"): ItemState(
            None, None, NOW - 9 * DAY, attested("old-rota", False)
        ),
    }
    (before,) = evaluate(config, stored, NOW)
    document = json.loads(json.dumps(status_document([before], NOW, Redactor())))
    (after,) = evaluate(config, states(config, document, NOW), NOW)

    def verdicts(view: object) -> list[tuple[str, bool, Reason, bool]]:
        return [(v.item.id, v.passing, v.reason, v.lapsed) for v in view.items]  # type: ignore[attr-defined]

    assert verdicts(after) == verdicts(before)
    assert (after.ready, after.score) == (before.ready, before.score)
    assert [v.item.id for v in after.items if v.lapsed] == ["stale"]


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"checklists": {"app": {}}},
        {"checklists": [{"sections": []}]},
        {"checklists": [{"name": "app", "sections": [{"items": [{"title": "no id"}]}]}]},
        {
            "checklists": [
                {
                    "name": "app",
                    "sections": [
                        {"items": [{"id": "up", "last_run": "2026-12-02T00:00:00Z", "passing": 1}]}
                    ],
                }
            ]
        },
        {
            "checklists": [
                {
                    "name": "app",
                    "sections": [
                        {
                            "items": [
                                {
                                    "id": "up",
                                    "passing": True,
                                    "reason": "a-reason-of-a-newer-version",
                                    "last_run": "yesterday",
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    ],
    ids=["list", "checklists-map", "unnamed", "no-id", "no-reason", "unknown-reason"],
)
def test_a_status_document_of_another_shape_is_a_remote_error(document: object) -> None:
    """`check --url` against another version (or not a daemon): exit 3 with why, no traceback."""
    config = parse_config(TEXT).config
    with pytest.raises(RemoteError) as caught:
        states(config, document, NOW)  # type: ignore[arg-type]
    assert caught.value.code == 3
    assert "not a document this version reads" in str(caught.value)


class _NotTheDaemon(QuietHandler):
    """Some other server on the daemon's port: 200 with a JSON type and a body that is not."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.reply(200, b"<html>proxy login</html>")


def test_a_2xx_that_is_not_json_is_reported_not_raised() -> None:
    """The `run` wrapper says why its ping went nowhere (and keeps its job's exit code)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotTheDaemon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        problem = report(base, "token", {"checklist": "app", "item": "job", "status": "start"})
    finally:
        server.shutdown()
        server.server_close()
    assert problem is not None and "the answer is not JSON" in problem


DAEMONS_VARIABLES = """
exporter:
  state: "postgresql://app:${RT_STATE_PASSWORD}@db.example:5432/readiness"
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: db
            title: Database
            postgres: {dsn: "postgresql://app:${RT_DB_PASSWORD}@db.example/app"}
          - id: api
            title: API
            http:
              url: "${RT_BASE_URL}/health"
              headers: {Authorization: "Bearer ${RT_API_TOKEN}"}
          - id: logs
            title: Logs
            file: {path: "${RT_LOG_DIR:?/var/log/app}/app.log"}
          - id: port
            title: Port
            tcp: {host: db.example, port: "${RT_PORT}"}
"""


def test_check_url_loads_a_config_whose_daemon_variables_are_unset_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`check --url`: the probes' and the exporter's variables are the daemon's business; on
    the CI host they may be unset. The item the daemon says is unconfigured is judged so."""
    for name in (
        "RT_STATE_PASSWORD",
        "RT_DB_PASSWORD",
        "RT_BASE_URL",
        "RT_API_TOKEN",
        "RT_LOG_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as caught:
        parse_config(DAEMONS_VARIABLES, "c.yaml")
    assert "RT_BASE_URL is not set" in str(caught.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no serializer warning for a value left out
        loaded = parse_config(DAEMONS_VARIABLES, "c.yaml", unset_ok=True)
        items = {i.id: i for i in loaded.config.checklists[0].sections[0].items}
        assert all(i.fingerprint for i in items.values())
    assert [i.kind for i in items.values()] == ["postgres", "http", "file", "tcp"]
    assert loaded.secrets == frozenset()  # nothing set here, nothing half-set to mask
    assert loaded.config.exporter.state.startswith("sqlite")  # the daemon's, not judged here
    assert not any(i.unconfigured for i in items.values())  # the daemon's environment decides
    document = {
        "checklists": [
            {
                "name": "app",
                "sections": [
                    {
                        "items": [
                            {
                                "id": "db",
                                "passing": True,
                                "reason": "ok",
                                "last_run": "2026-12-02T00:00:00+00:00",
                            },
                            {
                                "id": "api",
                                "passing": True,
                                "reason": "ok",
                                "last_run": "2026-12-02T00:00:00+00:00",
                            },
                            {
                                "id": "logs",
                                "passing": False,
                                "reason": "unconfigured",
                                "unconfigured": ["RT_LOG_DIR"],
                            },
                        ]
                    }
                ],
            }
        ]
    }
    config = loaded.config
    (view,) = evaluate(config, states(config, document, NOW), NOW)
    assert [(v.item.id, v.passing, v.reason) for v in view.items] == [
        ("db", True, Reason.OK),
        ("api", True, Reason.OK),
        ("logs", False, Reason.UNCONFIGURED),
        ("port", False, Reason.NOT_RUN),
    ]
    assert items["logs"].unconfigured == ("RT_LOG_DIR",)


def test_unset_ok_still_reports_an_unset_variable_outside_the_daemons_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `check --url` judges by (ids, titles, every, expect) must be set where it runs."""
    monkeypatch.delenv("RT_TITLE", raising=False)
    text = DAEMONS_VARIABLES.replace("title: Database", "title: ${RT_TITLE}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml", unset_ok=True)
    assert [i.message.split(" (")[0] for i in caught.value.issues] == [
        "environment variable RT_TITLE is not set"
    ]
