"""`host`: CPU, memory, swap, load and uptime of the machine the exporter runs on."""

from __future__ import annotations

import asyncio
import os

import psutil

from exporter.probes.base import Facts, ProbeContext, ProbeSpec

KIND = "host"
DEFAULT_EXPECT: tuple[str, ...] = ("memory_available_ratio > 0.05",)
FACTS: tuple[str, ...] = (
    "cpu_count",
    "memory_total",
    "memory_available",
    "memory_available_ratio",
    "swap_total",
    "swap_used",
    "load1",
    "load5",
    "load15",
    "uptime",
    "boot_time",
)


class Spec(ProbeSpec):
    pass


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    now = ctx.clock.now()
    # psutil reads /proc synchronously; cheap, but the loop never waits on the filesystem.
    return await asyncio.to_thread(_measure, now)


def _measure(now: float) -> Facts:
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    load1, load5, load15 = os.getloadavg()
    boot_time = psutil.boot_time()
    return {
        "cpu_count": psutil.cpu_count(),
        "memory_total": memory.total,
        "memory_available": memory.available,
        "memory_available_ratio": memory.available / memory.total if memory.total else None,
        "swap_total": swap.total,
        "swap_used": swap.used,
        "load1": load1,
        "load5": load5,
        "load15": load15,
        "uptime": now - boot_time,
        "boot_time": boot_time,
    }
