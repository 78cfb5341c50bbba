"""`tcp`: whether a TCP connection to host:port opens, and how long that takes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl

from pydantic import Field

from exporter.probes.base import (
    BUDGET_SHARE,
    Facts,
    ProbeContext,
    ProbeFailure,
    ProbeSpec,
    exception_chain,
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
    budget = BUDGET_SHARE * ctx.timeout
    started = ctx.clock.monotonic()

    def closed(reason: Reason, message: str) -> ProbeFailure:
        # Facts, not just a reason: an item may require the port to stay closed.
        facts: Facts = {"connected": False, "duration": ctx.clock.monotonic() - started}
        return ProbeFailure(reason, f"{target}: {message}", facts)

    try:
        async with asyncio.timeout(budget):
            _, writer = await asyncio.open_connection(spec.host, spec.port)
    except TimeoutError as exc:
        raise closed(Reason.TIMEOUT, f"no connection within {budget:g}s") from exc
    except socket.gaierror as exc:
        raise ProbeFailure(Reason.DNS, f"{target}: cannot resolve: {exc.strerror}") from exc
    except OSError as exc:
        raise closed(Reason.CONNECT, os_error_text(exc)) from exc
    duration = ctx.clock.monotonic() - started
    writer.close()
    with contextlib.suppress(OSError):  # a reset while closing changes nothing measured
        await writer.wait_closed()
    return {"connected": True, "duration": duration}


def os_error_text(exc: OSError) -> str:
    """The errno's text ("Connection refused"), not asyncio's "Connect call failed (addr)"."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


def socket_failure(
    exc: BaseException, target: str, facts: Facts | None = None
) -> ProbeFailure | None:
    """The failure named by the socket's own error, which client libraries wrap a few levels
    down: resolving (dns), the TLS handshake (tls), connecting (connect); None if there is none."""
    causes = list(exception_chain(exc))
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return ProbeFailure(Reason.DNS, f"{target}: cannot resolve: {cause.strerror}", facts)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ProbeFailure(Reason.TLS, f"{target}: certificate: {cause.verify_message}", facts)
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            reason = getattr(cause, "reason", None) or cause
            return ProbeFailure(Reason.TLS, f"{target}: TLS handshake failed: {reason}", facts)
    errors = [os_error_text(c) for c in causes if isinstance(c, OSError) and c.errno]
    return ProbeFailure(Reason.CONNECT, f"{target}: {errors[0]}", facts) if errors else None
