"""The probe registry: one module per kind. Adding a kind is one file and one line here.

Every module exports `KIND`, a pydantic `Spec` (subclass of `ProbeSpec`), `DEFAULT_EXPECT`
(conditions used when an item has no `expect:`), `FACTS` (the facts a run may give, `name.*`
for a family such as `header.<name>`: a condition on another is a config error) and
`async def probe(spec, ctx) -> Facts`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Protocol, cast

from exporter.probes import (
    command,
    disk,
    dns,
    file,
    host,
    http,
    manual,
    ping,
    postgres,
    process,
    prometheus,
    redis,
    tcp,
    tls,
)
from exporter.probes.base import Facts, ProbeContext, ProbeSpec


class ProbeModule(Protocol):
    KIND: str
    Spec: type[ProbeSpec]
    DEFAULT_EXPECT: tuple[str, ...]
    FACTS: tuple[str, ...]

    async def probe(self, spec: ProbeSpec, ctx: ProbeContext) -> Facts: ...


_MODULES: tuple[ModuleType, ...] = (
    http,
    tls,
    tcp,
    dns,
    postgres,
    redis,
    prometheus,
    file,
    disk,
    process,
    command,
    host,
    manual,
    ping,
)

PROBES: dict[str, ProbeModule] = {m.KIND: cast(ProbeModule, m) for m in _MODULES}
"""kind -> module, in the order DESIGN.md lists the kinds."""
