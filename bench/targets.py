"""The programs the benchmark runs against: our own nginx and blackbox_exporter instances,
each with its config in a temp dir on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # No keep-alive: every probe opens a new connection, on both sides, as a probe run
    # once a minute does in production.
    keepalive_timeout 0;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /health {{ default_type text/plain; return 200 "ok"; }}
    }}
}}
"""

BLACKBOX_CONF = """
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout:g}s")
        time.sleep(0.05)


def need(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if program == "nginx" else None)
    if path is None or not Path(path).exists():
        raise SystemExit(
            f"bench: {program} not found; on Debian: apt-get install nginx wrk "
            "prometheus-blackbox-exporter"
        )
    return path


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def nginx(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    argv = [need("nginx"), "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")]
    with process(argv, workdir / "nginx.out") as proc:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield proc, port


@contextlib.contextmanager
def blackbox(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    conf = workdir / "blackbox.yml"
    conf.write_text(BLACKBOX_CONF)
    argv = [
        need("prometheus-blackbox-exporter"),
        f"--config.file={conf}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with process(argv, workdir / "blackbox.out") as proc:
        wait_http(f"http://127.0.0.1:{port}/-/healthy")
        yield proc, port
