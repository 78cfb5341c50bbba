"""Helpers for running a deployment's command here as its service manager would."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.support.exporter import wait_for


def wait_until_answers(proc: subprocess.Popen[bytes], log: Path, url: str, what: str) -> None:
    """Waits (30 s at most) for `url` to answer 200; fails at once, with the log, if proc exits."""

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{what}: exited {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 30, f"{what} to answer {url}")
