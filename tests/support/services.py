"""The data services the service probes run against: a throwaway database in the machine's
PostgreSQL, private redis-server and prometheus processes on free ports, and a TCP proxy
that a test can cut to make a server go away."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.servers import QuietHandler, free_port

PG_HOST, PG_PORT = "127.0.0.1", 5432

# A market-data schema like the examples': two schemas, an extension, its index, one fresh quote.
MARKET_SCHEMA = """
CREATE EXTENSION pg_trgm;
CREATE SCHEMA market;
CREATE TABLE symbols (id serial PRIMARY KEY, ticker text NOT NULL UNIQUE);
CREATE TABLE market.quotes (symbol_id int REFERENCES symbols, at timestamptz, price numeric);
CREATE INDEX quotes_symbol_at_idx ON market.quotes (symbol_id, at);
CREATE INDEX symbols_ticker_trgm_idx ON symbols USING gin (ticker gin_trgm_ops);
INSERT INTO symbols (ticker) VALUES ('AAPL');
INSERT INTO market.quotes VALUES (1, now() - interval '10 seconds', 189.5);
"""


def psql(sql: str, database: str = "postgres") -> str:
    """Runs SQL as the superuser over TCP; returns the unaligned output."""
    done = subprocess.run(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            "postgres",
            "-d",
            database,
            "-X",
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"psql failed: {done.stderr.strip()}\n{sql}"
    return done.stdout.strip()


def pg_url(database: str) -> str:
    """The superuser's DSN of `database` in the machine's PostgreSQL."""
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}"


@contextlib.contextmanager
def pg_database(schema: str = "", prefix: str = "issue3") -> Iterator[str]:
    """A new database `<prefix>_<random>` with `schema` applied; dropped, with its sessions,
    after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    psql(f"CREATE DATABASE {name}")
    try:
        if schema:
            psql(schema, name)
        yield name
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class TcpProxy:
    """Forwards a free loopback port to a server; stop() closes the port and every connection
    through it, as a server that went away does; start() opens the same port again. freeze()
    makes it a black hole: connections stay open and new ones are accepted, but nothing is
    forwarded either way, as a hung server or a silent network drop does."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.frozen = threading.Event()

    def freeze(self) -> None:
        self.frozen.set()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.frozen.is_set():
                with self._lock:
                    self._connections.append(client)
                continue
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.frozen.is_set():
                    sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class RedisServer:
    """A private redis-server on a free port, no persistence; stop() and start() keep the port."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self._started_once = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Starts on a new free port if the first one was taken meanwhile; a restart keeps it."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server)"
        for attempt in range(1, 4):
            self.proc = subprocess.Popen(
                [
                    binary,
                    *("--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                    *self.args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _wait_until(lambda: _speaks_resp(self.port), 10, "redis-server", self.proc)
            except _Exited:
                if self._started_once or attempt == 3:
                    raise
                self.port = free_port()
                continue
            self._started_once = True
            return

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class PrometheusServer:
    """Debian's prometheus on a free loopback port, scraping `targets` and itself (job
    `prometheus`) every second, with the alerting `rules` given (a rule file's YAML)."""

    def __init__(self, workdir: Path, targets: dict[str, str], rules: str = "") -> None:
        self.port = free_port()
        self.workdir = workdir
        self.targets = targets
        self.rules = rules
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Starts on a new free port if the first one was taken meanwhile."""
        for attempt in range(1, 4):
            try:
                self._launch()
            except _Exited:
                if attempt == 3:
                    raise
                self.port = free_port()
                continue
            return

    def _launch(self) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed (apt-get install prometheus)"
        targets = {"prometheus": f"127.0.0.1:{self.port}", **self.targets}
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n"
            for job, target in targets.items()
        )
        rule_files = ""
        if self.rules:
            (self.workdir / "rules.yml").write_text(self.rules)
            rule_files = f"rule_files: ['{self.workdir / 'rules.yml'}']\n"
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"{rule_files}scrape_configs:\n{jobs}"
        )
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_until(self._ready, 30, f"prometheus (log: {self.log})", self.proc)

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200

    def query(self, promql: str) -> list[dict[str, object]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


class _Exited(AssertionError):
    """The server process ended while starting (most often: its port was taken meanwhile)."""


def _wait_until(
    ready: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _Exited(f"{what} exited with {proc.returncode} while starting")
        with contextlib.suppress(OSError, httpx.HTTPError):
            if ready():
                return
        time.sleep(0.05)
    proc.terminate()
    proc.wait(10)
    raise AssertionError(f"{what} was not ready within {timeout}s")


def _speaks_resp(port: int) -> bool:
    """Whether what listens on `port` answers PING as Redis does (+PONG, or -NOAUTH)."""
    with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)[:1] in (b"+", b"-")


class AppMetrics:
    """A scrape target shaped like a busy HTTP API with a cache: per second 95 requests answered
    200 and 1 answered 500 (a 1% error rate), half served within 2.5ms and all within 5ms
    (p99 about 4.95ms), 19 cache hits and 1 miss (a 95% hit rate)."""

    def __init__(self) -> None:
        self.started = time.monotonic() - 60  # as if it had been running a minute
        handler = type("Metrics", (_MetricsHandler,), {"app": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def exposition(self) -> str:
        t = time.monotonic() - self.started
        ok, failed = 95 * t, 1 * t
        total = ok + failed
        buckets = {"0.001": 0.0, "0.0025": total / 2, "0.005": total, "0.01": total, "+Inf": total}
        lines = [
            "# TYPE http_requests_total counter",
            f'http_requests_total{{code="200"}} {ok}',
            f'http_requests_total{{code="500"}} {failed}',
            "# TYPE http_request_duration_seconds histogram",
            *(
                f'http_request_duration_seconds_bucket{{le="{le}"}} {n}'
                for le, n in buckets.items()
            ),
            f"http_request_duration_seconds_sum {total * 0.003}",
            f"http_request_duration_seconds_count {total}",
            "# TYPE cache_hits_total counter",
            f"cache_hits_total {19 * t}",
            "# TYPE cache_misses_total counter",
            f"cache_misses_total {1 * t}",
        ]
        return "\n".join(lines) + "\n"


class _MetricsHandler(QuietHandler):
    app: AppMetrics

    def do_GET(self) -> None:
        self.reply(200, self.app.exposition().encode(), "text/plain; version=0.0.4")
