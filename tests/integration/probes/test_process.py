"""The `process` probe against real `sleep` processes started under unique names."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pydantic
import pytest

from exporter.probes import process
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason

SLEEP = shutil.which("sleep") or "/bin/sleep"

Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def unique_name() -> str:
    # Short enough for the kernel's 15-character process name; unique so that parallel
    # test runs on this machine never match each other's processes.
    return "rdx-" + uuid.uuid4().hex[:10]


@pytest.fixture
def start() -> Iterator[Start]:
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], executable: str = SLEEP) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, executable=executable)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def named_sleep(tmp_path: Path, unique_name: str) -> str:
    """A `sleep` whose process name (comm) is `unique_name`: the kernel takes it from the path."""
    link = tmp_path / unique_name
    link.symlink_to(SLEEP)
    return str(link)


def ctx() -> ProbeContext:
    return ProbeContext(timeout=5)


async def test_finds_a_process_by_its_name(
    start: Start, named_sleep: str, unique_name: str
) -> None:
    proc = start(["whatever", "30"], executable=named_sleep)

    facts = await process.probe(process.Spec(name=unique_name), ctx())

    assert facts["running"] is True
    assert facts["count"] == 1
    assert facts["pids"] == [str(proc.pid)]
    assert facts["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert isinstance(facts["rss"], int)
    assert facts["rss"] > 0
    assert isinstance(facts["uptime"], float)
    assert 0 <= facts["uptime"] < 60


async def test_finds_a_process_by_the_basename_of_argv0(start: Start, unique_name: str) -> None:
    proc = start([f"/opt/app/bin/{unique_name}", "30"])

    facts = await process.probe(process.Spec(name=unique_name), ctx())

    assert facts["running"] is True
    assert facts["pids"] == [str(proc.pid)]


async def test_several_matches_are_counted_oldest_first(
    start: Start, named_sleep: str, unique_name: str
) -> None:
    first = start([named_sleep, "30"])
    second = start([named_sleep, "30"])

    facts = await process.probe(process.Spec(name=unique_name), ctx())

    assert facts["count"] == 2
    assert facts["pids"] == [str(first.pid), str(second.pid)]


async def test_a_name_that_does_not_run_is_not_running(unique_name: str) -> None:
    facts = await process.probe(process.Spec(name=unique_name), ctx())

    assert facts == {"running": False, "count": 0, "pids": []}


async def test_the_name_must_match_exactly(
    start: Start, named_sleep: str, unique_name: str
) -> None:
    start([named_sleep, "30"])

    facts = await process.probe(process.Spec(name=unique_name[:-1]), ctx())

    assert facts["running"] is False


async def test_finds_a_process_by_pidfile(start: Start, tmp_path: Path) -> None:
    proc = start(["sleep", "30"])
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(f"{proc.pid}\n")

    facts = await process.probe(process.Spec(pidfile=str(pidfile)), ctx())

    assert facts["running"] is True
    assert facts["count"] == 1
    assert facts["pids"] == [str(proc.pid)]


async def test_a_missing_pidfile_means_not_running(tmp_path: Path) -> None:
    facts = await process.probe(process.Spec(pidfile=str(tmp_path / "app.pid")), ctx())

    assert facts == {"running": False, "count": 0, "pids": []}


async def test_a_stale_pidfile_means_not_running(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(str(gone.pid))

    facts = await process.probe(process.Spec(pidfile=str(pidfile)), ctx())

    assert facts["running"] is False


async def test_a_zombie_is_not_running(start: Start, tmp_path: Path) -> None:
    proc = start(["sleep", "30"])
    proc.kill()  # not reaped until the fixture's teardown: a zombie meanwhile
    deadline = time.monotonic() + 5
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the killed sleep never became a zombie"
        time.sleep(0.01)
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(str(proc.pid))

    facts = await process.probe(process.Spec(pidfile=str(pidfile)), ctx())

    assert facts["running"] is False


@pytest.mark.parametrize("content", ["", "not-a-pid\n", "-5", "12 34"])
async def test_a_garbled_pidfile_is_an_error_with_facts(tmp_path: Path, content: str) -> None:
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(content)

    with pytest.raises(ProbeFailure) as failure:
        await process.probe(process.Spec(pidfile=str(pidfile)), ctx())

    assert failure.value.reason is Reason.ERROR
    assert str(pidfile) in failure.value.message
    assert failure.value.facts["running"] is False


@pytest.mark.parametrize(
    "fields", [{}, {"name": "nginx", "pidfile": "/run/nginx.pid"}], ids=["neither", "both"]
)
def test_spec_needs_exactly_one_of_name_and_pidfile(fields: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one of `name`"):
        process.Spec(**fields)
