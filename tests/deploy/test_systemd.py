"""The systemd unit: `systemd-analyze verify` and `security` clean, and its commands work.

No systemd runs as PID 1 here, so the unit's ExecStart, ExecReload and stop are run as systemd
would run them: the unit's Environment, then SIGHUP through ExecReload, then SIGTERM."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter.config import ExporterSettings
from tests.deploy.running import wait_until_answers
from tests.support.exporter import wait_for
from tests.support.servers import free_port

REPO = Path(__file__).parents[2]
UNIT = REPO / "deploy/systemd/readiness-exporter.service"
ENV_FILE = REPO / "deploy/systemd/readiness-exporter.env"
INSTALLED = "/opt/readiness-exporter/bin/readiness-exporter"
MAX_EXPOSURE = 2.0
"""`systemd-analyze security` scores 0 (locked down) to 10 (exposed); under 2 is its 'OK'."""


def unit_settings(text: str) -> dict[str, list[str]]:
    """Key → values of the unit's [Service] etc. sections; systemd allows repeated keys."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=VALUE: {line!r}"
            settings.setdefault(key, []).append(value)
    return settings


SETTINGS = unit_settings(UNIT.read_text())


def local_unit(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this checkout's console script (verify needs it)."""
    script = Path(sys.executable).parent / "readiness-exporter"
    unit = tmp_path / UNIT.name
    unit.write_text((text or UNIT.read_text()).replace(INSTALLED, str(script)))
    return unit


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: scripts/test installs Debian's systemd"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    result = analyze("verify", str(local_unit(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict")
    result = analyze("verify", str(local_unit(tmp_path, broken)))
    assert "Unknown key" in result.stderr and "ProtectSytem" in result.stderr


def test_hardening_scores_ok(tmp_path: Path) -> None:
    result = analyze("security", "--offline=yes", str(local_unit(tmp_path)))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_keeps_its_promises() -> None:
    one = {key: values[-1] for key, values in SETTINGS.items()}
    for key, value in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "StateDirectory": "readiness-exporter",
        "TimeoutStopSec": "60",
        "KillSignal": "SIGTERM",
        "Restart": "on-failure",
        "RestartPreventExitStatus": "2",
    }.items():
        assert one.get(key) == value, f"{key}={one.get(key)}"
    assert SETTINGS["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    environment = dict(v.split("=", 1) for v in SETTINGS["Environment"])
    state = environment["READINESS_STATE"].removeprefix("sqlite:///")
    assert state.startswith(f"/var/lib/{one['StateDirectory']}/")
    config = shlex.split(one["ExecStart"])[-1]
    assert config.startswith(f"/etc/{one['ConfigurationDirectory']}/")


def test_env_file_example_names_real_settings() -> None:
    known = {f"READINESS_{name.upper()}" for name in ExporterSettings.model_fields}
    known |= {"READINESS_SHARD"}
    assigned = []
    for line in ENV_FILE.read_text().splitlines():
        example = line.strip().removeprefix("#")
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", example):
            assigned.append(example.split("=", 1)[0])
        else:
            assert line.startswith("#") or not line.strip(), f"not a comment or KEY=VALUE: {line!r}"
    readiness = {k for k in assigned if k.startswith("READINESS_") and not k.endswith("_TOKEN")}
    assert readiness and readiness <= known, readiness - known


@pytest.mark.slow
def test_exec_start_reload_and_stop_as_systemd_runs_them(tmp_path: Path) -> None:
    port = free_port()
    environment = dict(v.split("=", 1) for v in SETTINGS["Environment"])
    config = tmp_path / "readiness.yaml"
    shutil.copy(REPO / "config/readiness.example.yaml", config)
    env = {
        **environment,
        "PATH": "/usr/bin:/bin",
        "READINESS_LISTEN": f"127.0.0.1:{port}",
        "READINESS_SELF_URL": f"http://127.0.0.1:{port}",
        "READINESS_STATE": f"sqlite:///{tmp_path}/readiness-state.db",
    }

    def command(line: str, pid: int | None = None) -> list[str]:
        words = shlex.split(local_unit(tmp_path, line).read_text())
        return [
            str(config)
            if w.startswith("/etc/readiness-exporter/")
            else str(pid)
            if w == "$MAINPID"
            else w
            for w in words
        ]

    log = tmp_path / "exporter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command(SETTINGS["ExecStart"][-1]), env=env, cwd=tmp_path, stdout=out, stderr=out
        )
    try:
        wait_until_answers(proc, log, f"http://127.0.0.1:{port}/health/ready", "ExecStart")
        config.write_text(config.read_text().replace("title: Running on Linux", "title: Linux"))
        for line in SETTINGS["ExecReload"]:
            reload = subprocess.run(
                command(line, proc.pid), env=env, capture_output=True, text=True, timeout=60
            )
            assert reload.returncode == 0, reload.stderr
        wait_for(lambda: "config_reloaded" in log.read_text(), 10, "SIGHUP to reload the config")
        started = time.monotonic()
        proc.send_signal(getattr(signal, SETTINGS["KillSignal"][-1]))
        code = proc.wait(timeout=float(SETTINGS["TimeoutStopSec"][-1]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, log.read_text()
    assert time.monotonic() - started < float(SETTINGS["TimeoutStopSec"][-1])
