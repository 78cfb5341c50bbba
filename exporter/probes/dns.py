"""`dns`: whether a name resolves through the system resolver, and to which addresses."""

from __future__ import annotations

import asyncio
import socket
from typing import Literal

from pydantic import Field

from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec
from exporter.reasons import Reason

KIND = "dns"
DEFAULT_EXPECT: tuple[str, ...] = ("resolved == true",)
FACTS: tuple[str, ...] = ("resolved", "addresses", "count", "duration")

_FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


class Spec(ProbeSpec):
    name: str = Field(min_length=1)
    family: Literal["any", "ipv4", "ipv6"] = "any"
    port: int | None = Field(default=None, ge=1, le=65535)


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    started = ctx.clock.monotonic()
    loop = asyncio.get_running_loop()
    # getaddrinfo (the resolver the services themselves use: /etc/hosts, nsswitch) runs in a
    # worker thread. A hung resolver is left to the runner's timeout: no answer is not
    # proof that the name does not exist, so it yields no `resolved: false`.
    try:
        infos = await loop.getaddrinfo(
            spec.name, spec.port, family=_FAMILIES[spec.family], type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        facts: Facts = {
            "resolved": False,
            "addresses": [],
            "count": 0,
            "duration": ctx.clock.monotonic() - started,
        }
        raise ProbeFailure(Reason.DNS, f"{spec.name}: {exc.strerror}", facts) from exc
    addresses = sorted({str(sockaddr[0]) for *_, sockaddr in infos})
    return {
        "resolved": True,
        "addresses": addresses,
        "count": len(addresses),
        "duration": ctx.clock.monotonic() - started,
    }
