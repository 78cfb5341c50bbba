"""The `tcp` probe against real loopback listeners: open, closed, and one that hangs."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from exporter.probes import tcp
from exporter.probes.base import ProbeContext, ProbeFailure
from exporter.reasons import Reason


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_an_open_port_connects(listening_port: int, ctx: ProbeContext) -> None:
    facts = await tcp.probe(tcp.Spec(host="127.0.0.1", port=listening_port), ctx)

    assert facts["connected"] is True
    assert isinstance(facts["duration"], float)
    assert 0 <= facts["duration"] < 1


async def test_a_name_is_resolved_first(listening_port: int, ctx: ProbeContext) -> None:
    facts = await tcp.probe(tcp.Spec(host="localhost", port=listening_port), ctx)

    assert facts["connected"] is True


async def test_a_closed_port_fails_with_facts_saying_so(
    closed_port: int, ctx: ProbeContext
) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await tcp.probe(tcp.Spec(host="127.0.0.1", port=closed_port), ctx)

    # The facts let an item that requires the port to stay closed pass.
    assert failure.value.reason is Reason.CONNECT
    assert failure.value.facts["connected"] is False
    assert isinstance(failure.value.facts["duration"], float)
    assert f"127.0.0.1:{closed_port}" in failure.value.message


async def test_a_hanging_connect_gives_up_within_the_budget(full_backlog_port: int) -> None:
    ctx = ProbeContext(timeout=0.5)
    started = time.monotonic()

    with pytest.raises(ProbeFailure) as failure:
        await asyncio.wait_for(
            tcp.probe(tcp.Spec(host="127.0.0.1", port=full_backlog_port), ctx), 0.5
        )

    assert time.monotonic() - started < 0.5
    assert failure.value.reason is Reason.TIMEOUT
    assert failure.value.facts["connected"] is False


async def test_an_unknown_name_is_a_dns_failure(ctx: ProbeContext) -> None:
    with pytest.raises(ProbeFailure) as failure:
        await tcp.probe(tcp.Spec(host="does-not-exist.invalid", port=80), ctx)

    assert failure.value.reason is Reason.DNS


@pytest.mark.parametrize("port", [0, 65536])
def test_the_port_must_be_a_real_port(port: int) -> None:
    with pytest.raises(ValidationError):
        tcp.Spec(host="127.0.0.1", port=port)
