"""The `command` probe running real programs: exit codes, output, caps, timeouts."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from exporter.probes import command
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason


def ctx() -> ProbeContext:
    return ProbeContext(timeout=5)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(("program", "exit_code"), [("true", 0), ("false", 1)])
async def test_reports_the_exit_code(program: str, exit_code: int) -> None:
    facts = await command.probe(command.Spec(argv=[program]), ctx())

    assert facts["exit_code"] == exit_code
    assert facts["stdout"] == ""
    assert facts["stderr"] == ""
    assert isinstance(facts["duration"], float)
    assert 0 <= facts["duration"] < 5


async def test_captures_stdout_and_stderr_separately() -> None:
    spec = command.Spec(
        argv=python("import sys; print('ok'); print('two'); sys.stderr.write('warn'); sys.exit(3)")
    )

    facts = await command.probe(spec, ctx())

    assert facts["exit_code"] == 3
    assert facts["stdout"] == "ok\ntwo\n"
    assert facts["stdout_lines"] == 2
    assert facts["stderr"] == "warn"
    assert facts["stdout_truncated"] is False


async def test_arguments_are_not_interpreted_by_a_shell() -> None:
    facts = await command.probe(command.Spec(argv=["echo", "$HOME", "*", ";", "id"]), ctx())

    assert facts["stdout"] == "$HOME * ; id\n"


async def test_env_is_added_to_the_environment_and_cwd_is_used(tmp_path: Path) -> None:
    spec = command.Spec(
        argv=python("import os; print(os.environ['PROBE_GREETING'], os.environ['PATH'] != '')"),
        env={"PROBE_GREETING": "hello"},
    )
    facts = await command.probe(spec, ctx())
    assert facts["stdout"] == "hello True\n"

    facts = await command.probe(command.Spec(argv=["pwd"], cwd=str(tmp_path)), ctx())
    assert facts["stdout"] == f"{tmp_path}\n"


async def test_a_megabyte_of_output_is_read_but_only_the_cap_kept() -> None:
    code = (
        "import sys; sys.stdout.write('a' * 1_000_000 + '\\n'); sys.stderr.write('e' * 1_000_000)"
    )
    spec = command.Spec(argv=python(code), max_output_bytes=100)

    facts = await command.probe(spec, ctx())

    assert facts["exit_code"] == 0
    assert facts["stdout"] == "a" * 100
    assert facts["stderr"] == "e" * 100
    assert facts["stdout_truncated"] is True
    assert facts["stderr_truncated"] is True
    assert facts["stdout_lines"] == 1


async def test_undecodable_output_is_replaced_not_fatal() -> None:
    spec = command.Spec(argv=python("import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe')"))

    facts = await command.probe(spec, ctx())

    assert facts["stdout"] == "ok \ufffd\ufffd"


@pytest.mark.parametrize("program", ["no-such-command-rdx", "/nonexistent/bin/tool"])
async def test_a_missing_program_is_an_error(program: str) -> None:
    with pytest.raises(ProbeFailure, match=f"command not found: {program}") as failure:
        await command.probe(command.Spec(argv=[program]), ctx())

    assert failure.value.reason is Reason.ERROR


async def test_a_file_that_is_not_executable_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)

    with pytest.raises(ProbeFailure, match="command not executable") as failure:
        await command.probe(command.Spec(argv=[str(script)]), ctx())

    assert failure.value.reason is Reason.ERROR


async def test_a_missing_working_directory_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone"

    with pytest.raises(ProbeFailure, match="working directory not found"):
        await command.probe(command.Spec(argv=["true"], cwd=str(missing)), ctx())


def group_members(pgid: int) -> list[psutil.Process]:
    """Processes still alive in the group; a zombie is dead, only waiting for its reaper."""
    alive = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                alive.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "leader.pid"
    # A shell with a background child and a foreground child, both sleeping 30 s.
    spec = command.Spec(argv=["sh", "-c", f"echo $$ > {pidfile}; sleep 30 & sleep 30; wait"])

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(command.probe(spec, ctx()), 0.5)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    leader = int(pidfile.read_text())
    assert not psutil.pid_exists(leader)  # killed and reaped: no zombie left behind
    deadline = time.monotonic() + 2.0
    while group_members(leader) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert group_members(leader) == []


def test_spec_needs_a_program() -> None:
    with pytest.raises(ValueError, match="at least 1 item"):
        command.Spec(argv=[])
