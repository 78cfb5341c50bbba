"""How the long-running daemon asks glibc to give memory back: large buffers (a /metrics body
of megabytes, a batch of results) come from mmap and return to the system when freed, and the
few threads (the SQLite writer, the event loop's resolver pool) share two malloc arenas."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
"""glibc's default, which it otherwise raises to the largest block freed so far: after one 6 MB
scrape every later one came from the heap and stayed there (10,000 items: 146 MB after ten
scrapes, 130 MB with the threshold fixed)."""


def release_large_blocks() -> bool:
    """Fixes glibc's mmap threshold and arena count; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, 2))


YOUNG_COLLECTION_EVERY = 10_000
"""Allocations (net of frees) between two collections of the youngest generation: CPython's
700 collected ~10 times a second at 500 runs a second, each time walking the objects of the
runs in flight (tasks, coroutines, results) that would die by their reference counts anyway."""


def settle_collector() -> None:
    """Once the daemon runs: what startup made (modules, the config's models, the jobs) lives
    as long as the process, so it is frozen out of the cyclic collector's full passes, and the
    youngest generation is collected less often (bench/README.md, change 17). Frozen objects
    are still freed by their reference counts (a reloaded config's old models are)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)
