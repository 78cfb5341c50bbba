"""The `dns` probe through the system resolver: loopback names only, this machine is offline."""

from __future__ import annotations

import pytest

from exporter.probes import dns
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason


async def test_localhost_resolves_to_loopback(ctx: ProbeContext) -> None:
    facts = await dns.probe(dns.Spec(name="localhost", family="ipv4"), ctx)

    assert facts["resolved"] is True
    assert facts["addresses"] == ["127.0.0.1"]
    assert facts["count"] == 1
    assert isinstance(facts["duration"], float)


async def test_addresses_are_sorted_and_unique(ctx: ProbeContext) -> None:
    facts = await dns.probe(dns.Spec(name="localhost", port=443), ctx)

    addresses = facts["addresses"]
    assert isinstance(addresses, list)
    assert addresses == sorted(set(addresses))
    assert "127.0.0.1" in addresses
    assert facts["count"] == len(addresses)


async def test_the_family_filters_addresses(ctx: ProbeContext) -> None:
    facts = await dns.probe(dns.Spec(name="::1", family="ipv6"), ctx)

    assert facts["addresses"] == ["::1"]


async def test_a_name_that_cannot_exist_fails_with_facts(ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await dns.probe(dns.Spec(name="does-not-exist.invalid"), ctx)

    assert failure.value.reason is Reason.DNS
    assert failure.value.facts["resolved"] is False
    assert failure.value.facts["count"] == 0
    assert failure.value.facts["addresses"] == []
    assert "does-not-exist.invalid" in failure.value.message


async def test_an_ipv6_only_lookup_of_an_ipv4_literal_fails(ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await dns.probe(dns.Spec(name="127.0.0.1", family="ipv6"), ctx)

    assert failure.value.reason is Reason.DNS
