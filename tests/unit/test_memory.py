"""`serve` fixes glibc's mmap threshold, so a scrape's megabytes go back to the system, and
settles the cyclic collector once its jobs run."""

from __future__ import annotations

import ctypes.util
import gc
import platform
import weakref

import pytest

from exporter.memory import YOUNG_COLLECTION_EVERY, release_large_blocks, settle_collector


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or ctypes.util.find_library("c") is None,
    reason="glibc's mallopt only",
)
def test_glibc_takes_the_settings() -> None:
    assert release_large_blocks() is True


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_settled_the_startup_objects_are_frozen_and_later_cycles_still_collected() -> None:
    threshold = gc.get_threshold()
    startup = Node()
    gone = weakref.ref(startup)
    try:
        settle_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
        del startup
        assert gone() is None, "a frozen object is freed by its reference count"
        cycle = Node()
        cycle.other = Node()
        cycle.other.other = cycle
        collected = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert collected() is None, "a cycle made later is collected"
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
