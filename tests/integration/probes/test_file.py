"""The `file` probe against real files: existence, age on a fixed clock, size, mode, globs."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pydantic
import pytest

from exporter.clock import FixedClock
from exporter.probes import file
from exporter.probes.base import ProbeContext

NOW = 1_700_000_000.0
HOUR = 3600.0


@pytest.fixture
def ctx() -> ProbeContext:
    return ProbeContext(timeout=5, clock=FixedClock(start=NOW))


def make(path: Path, size: int, age: float, mode: int = 0o640) -> Path:
    path.write_bytes(b"x" * size)
    os.chmod(path, mode)
    os.utime(path, (NOW - age, NOW - age))
    return path


async def test_a_file_reports_age_size_mode_and_owner(tmp_path: Path, ctx: ProbeContext) -> None:
    dump = make(tmp_path / "db.dump", size=2048, age=3 * HOUR)

    facts = await file.probe(file.Spec(path=str(dump)), ctx)

    assert facts == {
        "exists": True,
        "count": 1,
        "path": str(dump),
        "age": 3 * HOUR,
        "size": 2048,
        "total_size": 2048,
        "mode": "0640",
        "owner": pwd.getpwuid(os.getuid()).pw_name,
        "group": grp.getgrgid(os.getgid()).gr_name,
        "world_readable": False,
        "world_writable": False,
        "is_dir": False,
    }


async def test_world_bits_follow_the_mode(tmp_path: Path, ctx: ProbeContext) -> None:
    shared = make(tmp_path / "shared", size=1, age=0, mode=0o666)

    facts = await file.probe(file.Spec(path=str(shared)), ctx)

    assert facts["mode"] == "0666"
    assert facts["world_readable"] is True
    assert facts["world_writable"] is True


async def test_a_glob_picks_the_newest_match_and_sums_sizes(
    tmp_path: Path, ctx: ProbeContext
) -> None:
    make(tmp_path / "a.dump", size=100, age=50 * HOUR)
    newest = make(tmp_path / "b.dump", size=300, age=2 * HOUR, mode=0o600)
    make(tmp_path / "c.dump", size=200, age=26 * HOUR)
    make(tmp_path / "notes.txt", size=5, age=0)

    facts = await file.probe(file.Spec(path=str(tmp_path / "*.dump")), ctx)

    assert facts["exists"] is True
    assert facts["count"] == 3
    assert facts["path"] == str(newest)
    assert facts["age"] == 2 * HOUR
    assert facts["size"] == 300
    assert facts["total_size"] == 600
    assert facts["mode"] == "0600"


async def test_a_directory_is_reported_as_one(tmp_path: Path, ctx: ProbeContext) -> None:
    facts = await file.probe(file.Spec(path=str(tmp_path)), ctx)

    assert facts["exists"] is True
    assert facts["is_dir"] is True


@pytest.mark.parametrize("name", ["missing.dump", "*.missing"])
async def test_nothing_there_is_a_fact_not_an_error(
    tmp_path: Path, ctx: ProbeContext, name: str
) -> None:
    facts = await file.probe(file.Spec(path=str(tmp_path / name)), ctx)

    assert facts == {"exists": False, "count": 0}


async def test_a_dangling_symlink_does_not_exist(tmp_path: Path, ctx: ProbeContext) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone")

    facts = await file.probe(file.Spec(path=str(tmp_path / "link")), ctx)

    assert facts == {"exists": False, "count": 0}


async def test_tilde_expands_to_home(
    tmp_path: Path, ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    make(tmp_path / "marker", size=7, age=60)

    facts = await file.probe(file.Spec(path="~/marker"), ctx)

    assert facts["size"] == 7
    assert facts["age"] == 60


def test_spec_rejects_unknown_fields_and_an_empty_path() -> None:
    with pytest.raises(pydantic.ValidationError):
        file.Spec(path="/x", pathh="/y")  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        file.Spec(path="")
