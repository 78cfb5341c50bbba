"""`tcp`: whether a TCP connection to host:port opens, and how long that takes."""

from __future__ import annotations

import asyncio
import socket

from pydantic import Field

from exporter.probes.base import (
    Facts,
    ProbeContext,
    ProbeFailure,
    ProbeSpec,
    os_error_text,
)
from exporter.reasons import Reason

KIND = "tcp"
DEFAULT_EXPECT: tuple[str, ...] = ("connected == true",)
FACTS: tuple[str, ...] = ("connected", "duration")


class Spec(ProbeSpec):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    target = f"{spec.host}:{spec.port}"
    started = ctx.clock.monotonic()

    def closed(reason: Reason, message: str) -> ProbeFailure:
        # Facts, not just a reason: an item may require the port to stay closed.
        facts: Facts = {"connected": False, "duration": ctx.clock.monotonic() - started}
        return ProbeFailure(reason, f"{target}: {message}", facts)

    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(ctx.remaining()):
            transport, _ = await loop.create_connection(_Opened, spec.host, spec.port)
    except TimeoutError as exc:
        raise closed(Reason.TIMEOUT, f"no connection within {ctx.budget:g}s") from exc
    except socket.gaierror as exc:
        raise ProbeFailure(Reason.DNS, f"{target}: cannot resolve: {exc.strerror}") from exc
    except OSError as exc:
        raise closed(Reason.CONNECT, os_error_text(exc)) from exc
    duration = ctx.clock.monotonic() - started
    transport.close()  # nothing to flush: the loop closes it on its next turn
    return {"connected": True, "duration": duration}


class _Opened(asyncio.Protocol):
    """A connection that is only opened and closed: a bare protocol, without the stream
    reader and writer `asyncio.open_connection` builds around it (a third of the probe's CPU
    on uvloop, bench/README.md)."""
