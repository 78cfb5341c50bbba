"""`tcp`: whether a TCP connection to host:port opens, and how long that takes."""

from __future__ import annotations

import asyncio
import contextlib
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

    try:
        async with asyncio.timeout(ctx.remaining()):
            _, writer = await asyncio.open_connection(spec.host, spec.port)
    except TimeoutError as exc:
        raise closed(Reason.TIMEOUT, f"no connection within {ctx.budget:g}s") from exc
    except socket.gaierror as exc:
        raise ProbeFailure(Reason.DNS, f"{target}: cannot resolve: {exc.strerror}") from exc
    except OSError as exc:
        raise closed(Reason.CONNECT, os_error_text(exc)) from exc
    duration = ctx.clock.monotonic() - started
    writer.close()
    with contextlib.suppress(OSError):  # a reset while closing changes nothing measured
        await writer.wait_closed()
    return {"connected": True, "duration": duration}
