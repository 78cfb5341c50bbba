"""`manual`: an item a person attests; nothing is probed, so it has no schedule."""

from __future__ import annotations

from exporter.probes.base import Facts, ProbeContext, ProbeSpec
from exporter.results import MANUAL

KIND = MANUAL
DEFAULT_EXPECT: tuple[str, ...] = ()
FACTS: tuple[str, ...] = ()


class Spec(ProbeSpec):
    pass


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    """Never scheduled: a manual item's state comes from attestations, not from a probe."""
    return {}
