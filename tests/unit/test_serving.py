"""The connection cap `serve` derives from the open-files limit: probes keep their share."""

from __future__ import annotations

from exporter.web.serving import FD_PER_PROBE, FD_RESERVE, MAX_CONNECTIONS, connection_cap


def test_the_cap_leaves_the_probes_their_descriptors() -> None:
    assert connection_cap(1024, 64) == 1024 - FD_RESERVE - FD_PER_PROBE * 64
    assert connection_cap(1024, 64) + FD_RESERVE + FD_PER_PROBE * 64 <= 1024


def test_the_cap_is_bounded_both_ways() -> None:
    assert connection_cap(1 << 20, 64) == MAX_CONNECTIONS
    assert connection_cap(100, 64) == 8  # a tiny limit still serves a scrape and a person
