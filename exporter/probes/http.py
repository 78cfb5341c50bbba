"""`http`: one HTTP request; its status, timing, headers, body and JSON fields as facts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx
from pydantic import Field, field_validator

from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec
from exporter.probes.tcp import socket_failure
from exporter.probes.tls import not_after, trust_context
from exporter.reasons import Reason
from exporter.units import parse_size

KIND = "http"
DEFAULT_EXPECT: tuple[str, ...] = ("status < 400",)

# Of the runner's budget, what the probe spends before it gives up and reports itself.
BUDGET_SHARE = 0.9
# Enough for a health document; a huge JSON body must not become thousands of facts.
JSON_FACTS_MAX = 200


class Spec(ProbeSpec):
    url: str = Field(min_length=1)
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    follow_redirects: bool = True
    insecure_skip_verify: bool = False
    ca_file: str | None = Field(default=None, description="Trusted besides the system roots")
    max_body_bytes: int = Field(default=64 * 1024, ge=0, description="Read at most this much")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return absolute_url(value, "https://host/health")

    @field_validator("method")
    @classmethod
    def _upper_case(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError(f"invalid HTTP method {value!r}")
        return value.upper()

    @field_validator("max_body_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value


def absolute_url(value: str, example: str) -> str:
    """`value` if it is an absolute http(s) URL; else a ValueError saying what to write."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"the url must be absolute http:// or https://, e.g. {example}")
    return value


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    loop = asyncio.get_running_loop()
    budget = BUDGET_SHARE * ctx.timeout
    deadline = loop.time() + budget
    client = await shared_client(ctx, spec.insecure_skip_verify, spec.ca_file)
    url = httpx.URL(spec.url)
    target = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    # httpx's timeouts bound each step; asyncio.timeout bounds the whole request against a
    # server that drips bytes just fast enough. Connecting spends the connect timeout twice
    # (TCP, then TLS) and must time out inside httpx: httpcore leaks the socket of a
    # handshake that is cancelled instead.
    remaining = max(deadline - loop.time(), 0.001)
    timeout = httpx.Timeout(remaining, connect=remaining / 2)
    request = client.build_request(
        spec.method, url, headers=spec.headers, content=spec.body, timeout=timeout
    )
    started = ctx.clock.monotonic()
    try:
        async with asyncio.timeout_at(deadline):
            response = await client.send(
                request, stream=True, follow_redirects=spec.follow_redirects
            )
            try:
                body, truncated = await _read_capped(response, spec.max_body_bytes)
                tls = _peer_tls(response, ctx.clock.now())
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise ProbeFailure(Reason.TIMEOUT, f"{target}: no answer within {budget:g}s") from exc
    except httpx.TooManyRedirects as exc:
        raise ProbeFailure(Reason.ERROR, f"{target}: too many redirects") from exc
    except httpx.TransportError as exc:
        raise transport_failure(exc, target) from exc
    duration = ctx.clock.monotonic() - started
    text = _decode(body, response.charset_encoding)
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    facts: Facts = {
        "status": response.status_code,
        "duration": duration,
        "http_version": response.http_version,
        "final_url": str(response.url.copy_with(userinfo=b"")),
        "redirects": len(response.history),
        "content_type": media_type or None,
        "body": text,
        "body_size": len(body),
        "body_truncated": truncated,
        **tls,
    }
    facts.update({f"header.{name}": response.headers[name] for name in response.headers})
    if not truncated and ("json" in media_type or text.lstrip()[:1] in ("{", "[")):
        facts.update(_json_facts(text))
    return facts


async def shared_client(
    ctx: ProbeContext, insecure_skip_verify: bool, ca_file: str | None
) -> httpx.AsyncClient:
    """The one HTTP client per trust setting, shared by every item (and by other kinds that
    speak HTTP): pooled connections, one TLS setup."""
    verify = not insecure_skip_verify
    trusted = ca_file if verify else None
    return await ctx.resources.get(
        (KIND, verify, trusted),
        lambda: asyncio.to_thread(_new_client, verify, trusted),
        httpx.AsyncClient.aclose,
    )


def _new_client(verify: bool, ca_file: str | None) -> httpx.AsyncClient:
    # Loads certificate files: called off the event loop. trust_env=False: a probe measures
    # the target itself, not whatever HTTP_PROXY or SSL_CERT_FILE the daemon inherited.
    return httpx.AsyncClient(
        verify=trust_context(ca_file) if verify else False,
        trust_env=False,
        # No shared cap: one slow target must not queue the probes of every other item.
        limits=httpx.Limits(max_connections=None),
    )


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the (decompressed) body, and whether there was more."""
    kept = bytearray()
    # httpx types it as an iterator; it is a generator, closed here rather than left to the GC.
    chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            kept += chunk
            if len(kept) > limit:
                return bytes(kept[:limit]), True
    return bytes(kept), False


def _peer_tls(response: httpx.Response, now: float) -> Facts:
    """Days until the server's certificate expires, read from the live connection."""
    stream = response.extensions.get("network_stream")
    tls: ssl.SSLObject | None = stream.get_extra_info("ssl_object") if stream else None
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    if tls is None or der is None:
        return {}
    return {
        "tls_days_left": (not_after(der).timestamp() - now) / 86400,
        "tls_version": tls.version(),
    }


def _decode(body: bytes, charset: str | None) -> str:
    # Lenient: a cap may cut a character in half, and servers mislabel charsets.
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _json_facts(text: str) -> Facts:
    """Scalars of a JSON document as `json.a.b.0.c` facts, in document order, capped."""
    try:
        document: Any = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    facts: Facts = {}
    pending: list[tuple[str, Any]] = [("json", document)]
    # A stack, not recursion: nesting depth is the server's choice.
    while pending and len(facts) < JSON_FACTS_MAX:
        path, value = pending.pop()
        if isinstance(value, dict):
            pending.extend(reversed([(f"{path}.{k}", v) for k, v in value.items()]))
        elif isinstance(value, list):
            pending.extend(reversed([(f"{path}.{i}", v) for i, v in enumerate(value)]))
        else:
            facts[path] = value
    return facts


def transport_failure(exc: httpx.TransportError, target: str) -> ProbeFailure:
    """httpx wraps the socket's own error a few levels down; that error names the reason."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.ProxyError):
        return ProbeFailure(Reason.ERROR, f"{target}: {exc}")
    return socket_failure(exc, target) or ProbeFailure(Reason.CONNECT, f"{target}: {exc}")
