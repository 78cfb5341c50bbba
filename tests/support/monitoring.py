"""The monitoring bundle under test: real Prometheus and Alertmanager subprocesses started from
the shipped config files, and a webhook receiver that collects Alertmanager's notifications."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.exporter import wait_for
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "readiness.rules.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DASHBOARDS = ROOT / "grafana" / "dashboards"
RUNBOOK = ROOT / "docs" / "runbook.md"


VARIABLE = re.compile(r"\$\{?(\w+)\}?")
LABEL_VALUES = re.compile(r"label_values\((.+), (\w+)\)")


def substitute(expr: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"unknown variable {match.group(0)} in {expr!r}"
        return values[match.group(1)]

    return VARIABLE.sub(value, expr)


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every panel target and query variable."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((dashboard["uid"], panel["title"], target["expr"]))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                queries.append((dashboard["uid"], f"${variable['name']}", variable["definition"]))
    return queries


def promql(expr: str, values: dict[str, str]) -> tuple[str, str | None]:
    """A dashboard query as PromQL Prometheus answers, with Grafana's variables given
    `values`: a `label_values(QUERY, LABEL)` variable is its QUERY (and the LABEL it lists)."""
    label_values = LABEL_VALUES.fullmatch(expr)
    if label_values:
        return substitute(label_values.group(1), values), label_values.group(2)
    return substitute(expr, values), None


def program(*names: str) -> str:
    """The path of the first of `names` on PATH (Debian names Alertmanager differently)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        f"none of {names} is installed: scripts/test installs Debian's prometheus and "
        "prometheus-alertmanager packages"
    )


def replace_once(text: str, old: str, new: str, count: int = 1) -> str:
    """Substitutes `old`, which must occur exactly `count` times: the shipped file's shape is
    part of what the tests check, so a substitution that no longer applies is a failure."""
    found = text.count(old)
    assert found == count, f"expected {old!r} {count} time(s) in the shipped file, found {found}"
    return text.replace(old, new)


def shorten_for(rules: str, duration: str) -> str:
    """The shipped rule file with every alert's `for:` set to `duration`, nothing else changed."""
    shortened, n = re.subn(r"(?m)^(\s+)for: \S+$", rf"\g<1>for: {duration}", rules)
    assert n > 0, "no `for:` in the rule file"
    return shortened


class Process:
    """A monitoring program as a subprocess on a free loopback port, ready once /-/ready says so."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(self._ready, timeout, f"{self.name} on {self.url} to become ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.name} log:\n{self.tail()}") from None

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET an API path; fails unless it answers 200 with JSON."""
        response = httpx.get(f"{self.url}{path}", params=params, timeout=5)
        assert response.status_code == 200, f"GET {path} {params}: {response.text}"
        return response.json()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result (Prometheus only); fails on a query error."""
        body = self.api("/api/v1/query", query=promql)
        assert body.get("status") == "success", f"query {promql!r} failed: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def prometheus(workdir: Path, exporter_port: int, alertmanager_port: int, for_: str) -> Process:
    """Prometheus on the shipped config: only the addresses, the intervals (1s) and the rule file
    (the shipped one with `for:` shortened) are substituted."""
    rules = workdir / "readiness.rules.yml"
    rules.write_text(shorten_for(RULES.read_text(), for_))
    config = PROMETHEUS_CONFIG.read_text()
    config = replace_once(config, "scrape_interval: 15s", "scrape_interval: 1s")
    config = replace_once(config, "evaluation_interval: 15s", "evaluation_interval: 1s")
    config = replace_once(config, "- ../../alerts/readiness.rules.yml", f"- {rules}")
    config = replace_once(config, '"127.0.0.1:9093"', f'"127.0.0.1:{alertmanager_port}"')
    config = replace_once(config, '"127.0.0.1:9840"', f'"127.0.0.1:{exporter_port}"')
    path = workdir / "prometheus.yml"
    path.write_text(config)
    port = free_port()
    argv = [
        program("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return Process("prometheus", argv, port, workdir / "prometheus.log")


def alertmanager(workdir: Path, webhook_url: str) -> Process:
    """Alertmanager on the shipped config: only the webhook address and the grouping waits are
    substituted. Clustering is off (a single instance needs no gossip)."""
    config = ALERTMANAGER_CONFIG.read_text()
    config = replace_once(config, "http://127.0.0.1:5001", webhook_url, count=2)
    config = replace_once(config, "group_wait: 30s", "group_wait: 1s")
    config = replace_once(config, "group_interval: 5m", "group_interval: 1s")
    path = workdir / "alertmanager.yml"
    path.write_text(config)
    port = free_port()
    argv = [
        program("alertmanager", "prometheus-alertmanager"),
        f"--config.file={path}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return Process("alertmanager", argv, port, workdir / "alertmanager.log")


class WebhookReceiver:
    """Collects the JSON Alertmanager POSTs, by path (/pager, /chat)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.notifications.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self, path: str, status: str, **labels: str) -> list[dict[str, Any]]:
        """Alerts in notifications POSTed to `path` with `status` whose labels include `labels`."""
        with self._lock:
            received = list(self.notifications)
        return [
            alert
            for p, notification in received
            if p == path
            for alert in notification["alerts"]
            if alert["status"] == status and labels.items() <= alert["labels"].items()
        ]

    def summary(self) -> str:
        with self._lock:
            received = list(self.notifications)
        return "\n".join(
            f"{p} {a['status']} {a['labels']}" for p, n in received for a in n["alerts"]
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
