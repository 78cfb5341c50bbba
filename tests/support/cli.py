"""`readiness-exporter` run as users run it: a subprocess with captured output."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=timeout
    )
