"""`redis`: a Redis server's version, role, memory, persistence and any INFO field, over one
client (a small connection pool) shared per URL."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from exporter.probes.base import (
    ConnectTimeout,
    Facts,
    FactValue,
    ProbeContext,
    ProbeFailure,
    ProbeSpec,
    socket_failure,
)
from exporter.reasons import Reason

# redis-py is imported inside the functions that use it: most configs never probe this kind,
# and loading it costs every exporter process several MB of RSS.
if TYPE_CHECKING:
    import redis.asyncio
    import redis.exceptions

KIND = "redis"
DEFAULT_EXPECT: tuple[str, ...] = ("connected == true",)
FACTS: tuple[str, ...] = (
    "connected",
    "version",
    "role",
    "memory_used_ratio",
    "rdb_last_save_age",
    "hit_ratio",
    "duration",
    "info.*",
)


_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+")


class Spec(ProbeSpec):
    url: str = Field(min_length=1, description="redis://[user:${PASSWORD}@]host:6379/0, rediss://")
    connect_timeout: ConnectTimeout = 5.0

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                "the url must be redis://host:6379/0, rediss:// for TLS, or unix:///path.sock"
            )
        return value


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    import redis.exceptions

    target = _target(spec.url)
    client = await ctx.resources.get(
        (KIND, spec.url, spec.connect_timeout), lambda: _new_client(spec), _close_client
    )
    started = ctx.clock.monotonic()
    try:
        async with asyncio.timeout(ctx.remaining()):
            text = cast(str, await client.info())
    except TimeoutError as exc:
        raise ProbeFailure(Reason.TIMEOUT, f"{target}: no answer within {ctx.budget:g}s") from exc
    except redis.exceptions.RedisError as exc:
        raise _failure(exc, target) from exc
    duration = ctx.clock.monotonic() - started
    info = parse_info(text)
    facts: Facts = {
        "connected": True,
        "version": info.get("redis_version"),
        "role": info.get("role"),
        **{f"info.{name}": value for name, value in info.items()},
        "duration": duration,
    }
    facts.update(_derived(info, ctx.clock.now()))
    return facts


async def _new_client(spec: Spec) -> redis.asyncio.Redis:
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # One immediate retry: a pooled connection to a server that restarted fails once, and a
    # new one then answers; a server that is down is refused twice, fast.
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
        spec.url,
        decode_responses=True,
        socket_connect_timeout=spec.connect_timeout,
        retry=Retry(NoBackoff(), 1),
        client_name="readiness-exporter",
    )
    # The raw INFO text, parsed here: redis-py would turn a version such as "7.10" into 7.1.
    client.set_response_callback("INFO", lambda response, **_: response)
    return client


async def _close_client(client: redis.asyncio.Redis) -> None:
    await client.aclose()


def parse_info(text: str) -> dict[str, FactValue]:
    """INFO's `field:value` lines; keyspace lines (`db0:keys=1,expires=0`) become `db0.keys`."""
    info: dict[str, FactValue] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, value = line.split(":", 1)
        if re.fullmatch(r"db[0-9]+", name):
            for pair in value.split(","):
                key, _, number = pair.partition("=")
                info[f"{name}.{key}"] = _value(key, number)
        else:
            info[name] = _value(name, value)
    return info


def _value(name: str, text: str) -> FactValue:
    if _INTEGER.fullmatch(text):
        return int(text)
    # A version stays text: 7.10 is not 7.1.
    if _DECIMAL.fullmatch(text) and "version" not in name:
        return float(text)
    return text


def _derived(info: dict[str, Any], now: float) -> Facts:
    """Ratios and ages computed from INFO fields, when their inputs are there."""
    facts: Facts = {}
    maxmemory, used = info.get("maxmemory"), info.get("used_memory")
    if isinstance(maxmemory, int) and maxmemory > 0 and isinstance(used, int):
        facts["memory_used_ratio"] = used / maxmemory
    server_time = info.get("server_time_usec")
    server_now = server_time / 1e6 if isinstance(server_time, int) else now
    last_save = info.get("rdb_last_save_time")
    if isinstance(last_save, int):
        facts["rdb_last_save_age"] = max(server_now - last_save, 0.0)
    hits, misses = info.get("keyspace_hits"), info.get("keyspace_misses")
    if isinstance(hits, int) and isinstance(misses, int) and hits + misses > 0:
        facts["hit_ratio"] = hits / (hits + misses)
    return facts


def _target(url: str) -> str:
    """host:port (or the socket path) of a URL, never its user or password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or 'localhost'}:{port}"


def _failure(exc: redis.exceptions.RedisError, target: str) -> ProbeFailure:
    import redis.exceptions

    down: Facts = {"connected": False}
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.NoPermissionError):
        return ProbeFailure(Reason.AUTH, f"{target}: rejected: {exc}", down)
    if isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith(
        ("NOAUTH", "WRONGPASS")
    ):
        return ProbeFailure(Reason.AUTH, f"{target}: rejected: {exc}", down)
    if isinstance(exc, redis.exceptions.TimeoutError):
        return ProbeFailure(Reason.TIMEOUT, f"{target}: {exc}", down)
    found = socket_failure(exc, target, down)
    if found is not None:
        return found
    if isinstance(exc, redis.exceptions.ConnectionError):
        return ProbeFailure(Reason.CONNECT, f"{target}: {exc}", down)
    return ProbeFailure(Reason.ERROR, f"{target}: {exc}")
