"""`ping`: an item a job reports to (POST /api/v1/pings, `readiness-exporter run`); nothing is
probed, so it has no schedule. Its facts are what the job's last finished run reported."""

from __future__ import annotations

from exporter.probes.base import Facts, ProbeContext, ProbeSpec

KIND = "ping"
DEFAULT_EXPECT: tuple[str, ...] = ("exit_code == 0",)
FACTS: tuple[str, ...] = ("status", "exit_code", "duration", "output")


class Spec(ProbeSpec):
    pass


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    """Never scheduled: a ping item's state comes from its job's pings, not from a probe."""
    return {}
