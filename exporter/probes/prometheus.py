"""`prometheus`: one PromQL instant query; its value and how many series answered.

What `up` means here: Prometheus writes `up{job,instance}` 1 after each successful scrape and
0 after a failed one, and has no `up` at all for a target it does not know. So
`up{job="app"} == 1` answers with one series per healthy target (the default `series > 0`
passes while at least one is scraped), `min(up{job="app"})` answers with one value that is 1
only while every target is scraped, and an empty answer means no such target or metric."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
from typing import Any

from pydantic import Field, field_validator

from exporter.probes import http
from exporter.probes.base import (
    Facts,
    FactValue,
    ProbeContext,
    ProbeFailure,
    ProbeSpec,
)
from exporter.reasons import Reason

KIND = "prometheus"
# Like an alerting rule: the query holds while it returns anything.
DEFAULT_EXPECT: tuple[str, ...] = ("series > 0",)
FACTS: tuple[str, ...] = ("value", "series", "min", "max", "result_type", "duration")

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class BasicAuth(ProbeSpec):
    username: str = Field(min_length=1)
    password_env: str = Field(pattern=_ENV_NAME, description="the variable holding the password")


class Spec(ProbeSpec):
    url: str = Field(min_length=1, description="Prometheus' base URL, e.g. http://127.0.0.1:9090")
    query: str = Field(min_length=1, description="PromQL, evaluated now")
    bearer_token_env: str | None = Field(default=None, pattern=_ENV_NAME)
    basic_auth: BasicAuth | None = None
    insecure_skip_verify: bool = False
    ca_file: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http.absolute_url(value, "http://prometheus:9090").rstrip("/")


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    # Here, not at the top: see http.py.
    import aiohttp
    from yarl import URL

    client = await http.shared_client(ctx, spec.insecure_skip_verify, spec.ca_file)
    url = URL(f"{spec.url}/api/v1/query")
    target = f"{url.host}:{url.port}"
    # Prometheus stops evaluating at its own `timeout`, a little before the probe gives up.
    params = {"query": spec.query, "timeout": f"{max(int(ctx.remaining() * 900), 1)}ms"}
    started = ctx.clock.monotonic()
    try:
        async with (
            asyncio.timeout(ctx.remaining()),
            client.get(
                url,
                params=params,
                headers=_auth_headers(spec),
                allow_redirects=False,
            ) as response,
        ):
            status = response.status
            content = await response.read()
    except TimeoutError as exc:
        raise ProbeFailure(Reason.TIMEOUT, f"{target}: no answer within {ctx.budget:g}s") from exc
    except aiohttp.ClientError as exc:
        raise http.transport_failure(exc, target) from exc
    duration = ctx.clock.monotonic() - started
    body = _json(status, content, target)
    if body.get("status") != "success":
        raise _query_failure(status, body, target)
    facts = result_facts(body.get("data") or {}, target)
    facts["duration"] = duration
    return facts


def _auth_headers(spec: Spec) -> dict[str, str]:
    # Basic wins over a bearer token when both are given, as with httpx's `auth=` before.
    if spec.basic_auth is not None:
        pair = f"{spec.basic_auth.username}:{_env(spec.basic_auth.password_env)}"
        return {"Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"}
    if spec.bearer_token_env is None:
        return {}
    return {"Authorization": f"Bearer {_env(spec.bearer_token_env)}"}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ProbeFailure(Reason.ERROR, f"environment variable {name} is not set")
    return value


def _json(status: int, content: bytes, target: str) -> dict[str, Any]:
    if status in (401, 403):
        raise ProbeFailure(Reason.AUTH, f"{target}: HTTP {status}: rejected")
    try:
        body = json.loads(content)
    except ValueError as exc:
        raise ProbeFailure(
            Reason.ERROR,
            f"{target}: HTTP {status}, not a Prometheus API answer "
            "(is the url Prometheus' base URL?)",
        ) from exc
    if not isinstance(body, dict):
        raise ProbeFailure(Reason.ERROR, f"{target}: not a Prometheus API answer")
    return body


def _query_failure(status: int, body: dict[str, Any], target: str) -> ProbeFailure:
    kind, error = body.get("errorType", "error"), body.get("error", f"HTTP {status}")
    reason = Reason.TIMEOUT if kind == "timeout" else Reason.ERROR
    return ProbeFailure(reason, f"{target}: query failed: {kind}: {error}")


def result_facts(data: dict[str, Any], target: str) -> Facts:
    """`value` of a scalar or a single sample, `series` counted, `min`/`max` over samples."""
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string") and isinstance(result, list) and len(result) == 2:
        value = _number(result[1]) if kind == "scalar" else str(result[1])
        return {"result_type": kind, "series": 1, "value": value}
    if kind != "vector" or not isinstance(result, list):
        raise ProbeFailure(
            Reason.ERROR,
            f"{target}: the query returns a {kind}, not an instant value: "
            "drop the [range] or wrap it, e.g. rate(metric[5m])",
        )
    values = [_number(sample["value"][1]) for sample in result]
    numbers = [v for v in values if isinstance(v, float)]
    return {
        "result_type": kind,
        "series": len(result),
        "value": values[0] if len(values) == 1 else None,
        "min": min(numbers) if numbers else None,
        "max": max(numbers) if numbers else None,
    }


def _number(text: Any) -> FactValue:
    """A sample value; NaN (0/0: no traffic) and infinities are no value at all."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
