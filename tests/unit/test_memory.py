"""`serve` fixes glibc's mmap threshold, so a scrape's megabytes go back to the system."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from exporter.memory import release_large_blocks


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or ctypes.util.find_library("c") is None,
    reason="glibc's mallopt only",
)
def test_glibc_takes_the_settings() -> None:
    assert release_large_blocks() is True
