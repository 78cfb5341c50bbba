"""The exporter as users run it: a `readiness-exporter serve` subprocess on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import free_port

T = TypeVar("T")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Exporter:
    def __init__(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.args = args
        self.port = port or free_port()
        self.env = {**os.environ, "READINESS_LISTEN": f"127.0.0.1:{self.port}", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config.parent / f"exporter-{self.port}.log"

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "exporter", "serve", "--config", str(self.config)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.command, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self._ready(), timeout, f"exporter on {self.url} to become ready", self)

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}:\n{self.output()}")
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=5, **kwargs)  # type: ignore[arg-type]

    def samples(self) -> Samples:
        response = self.get("/metrics")
        response.raise_for_status()
        out: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return out

    def value(self, name: str, **labels: str) -> float | None:
        """The one sample of `name` whose labels include `labels`, or None."""
        found = [
            v
            for (n, ls), v in self.samples().items()
            if n == name and set(labels.items()) <= set(ls)
        ]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else None


def wait_for(
    condition: Callable[[], T | None], timeout: float, what: str, exporter: Exporter | None = None
) -> T:
    """Polls until `condition` returns something truthy; fails with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    tail = f"\nexporter log:\n{exporter.output()[-3000:]}" if exporter else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r}){tail}")
