"""The `disk` probe on the filesystem under tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.probes import disk
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason


async def test_reports_space_of_the_filesystem_holding_the_path(tmp_path: Path) -> None:
    facts = await disk.probe(disk.Spec(path=str(tmp_path)), ProbeContext(timeout=5))

    usage = shutil.disk_usage(tmp_path)
    assert facts["total"] == usage.total
    assert isinstance(facts["free"], int)
    assert isinstance(facts["used"], int)
    # Other tests write to the same filesystem meanwhile: compare loosely.
    assert abs(facts["free"] - usage.free) < 256 * 2**20
    assert 0 < facts["used"] + facts["free"] <= facts["total"]
    assert isinstance(facts["free_ratio"], float)
    assert 0.0 <= facts["free_ratio"] <= 1.0
    ratio = facts["inodes_free_ratio"]
    assert ratio is None or 0.0 <= ratio <= 1.0


async def test_defaults_to_the_root_filesystem() -> None:
    facts = await disk.probe(disk.Spec(), ProbeContext(timeout=5))

    assert facts["total"] == shutil.disk_usage("/").total


async def test_a_file_path_measures_its_filesystem(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")

    facts = await disk.probe(disk.Spec(path=str(tmp_path / "f")), ProbeContext(timeout=5))

    assert facts["total"] == shutil.disk_usage(tmp_path).total


async def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"

    with pytest.raises(ProbeFailure) as failure:
        await disk.probe(disk.Spec(path=str(missing)), ProbeContext(timeout=5))

    assert failure.value.reason is Reason.ERROR
    assert str(missing) in failure.value.message
