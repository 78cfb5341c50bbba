"""The `host` probe on this machine: every fact present and plausible."""

from __future__ import annotations

import os

from exporter.clock import FixedClock
from exporter.probes import host
from exporter.probes.base import ProbeContext


async def test_facts_are_present_and_sane() -> None:
    facts = await host.probe(host.Spec(), ProbeContext(timeout=5))

    assert facts["cpu_count"] == os.cpu_count()
    for name in ("memory_total", "memory_available", "swap_total", "swap_used"):
        assert isinstance(facts[name], int), name
        assert facts[name] >= 0, name
    assert 0 < facts["memory_available"] <= facts["memory_total"]
    assert facts["swap_used"] <= facts["swap_total"]
    assert isinstance(facts["memory_available_ratio"], float)
    assert 0.0 < facts["memory_available_ratio"] <= 1.0
    for name in ("load1", "load5", "load15"):
        assert isinstance(facts[name], float), name
        assert facts[name] >= 0.0, name
    assert isinstance(facts["uptime"], float)
    assert facts["uptime"] > 0
    assert isinstance(facts["boot_time"], float)


async def test_uptime_is_measured_on_the_context_clock() -> None:
    clock = FixedClock(start=2_000_000_000.0)

    facts = await host.probe(host.Spec(), ProbeContext(timeout=5, clock=clock))

    assert isinstance(facts["boot_time"], float)
    assert facts["uptime"] == 2_000_000_000.0 - facts["boot_time"]
