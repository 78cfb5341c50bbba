"""`http`: one HTTP request; its status, timing, headers, body and JSON fields as facts."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from exporter import __version__
from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec, socket_failure
from exporter.probes.tls import not_after, trust_context
from exporter.reasons import Reason
from exporter.redact import secret_key
from exporter.units import parse_size

# aiohttp and yarl are imported inside the functions that use them: `--version`, `validate` and
# every process that only judges or renders would otherwise spend a third of a second on them.
if TYPE_CHECKING:
    import aiohttp
    from aiohttp.connector import Connection

KIND = "http"
DEFAULT_EXPECT: tuple[str, ...] = ("status < 400",)
FACTS: tuple[str, ...] = (
    "status",
    "duration",
    "body",
    "body_size",
    "body_truncated",
    "content_type",
    "http_version",
    "final_url",
    "redirects",
    "tls_days_left",
    "tls_version",
    "header.*",
    "json.*",
)

# Enough for a health document; a huge JSON body must not become thousands of facts.
JSON_FACTS_MAX = 200
MAX_REDIRECTS = 20
# Seconds an idle pooled connection is kept: a probe every few seconds reuses it, one a minute
# opens a new one, as it would in a fresh process.
KEEPALIVE = 5.0
USER_AGENT = f"readiness-exporter/{__version__}"


class Spec(ProbeSpec):
    url: str = Field(min_length=1)
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    follow_redirects: bool = True
    insecure_skip_verify: bool = False
    ca_file: str | None = Field(default=None, description="Trusted besides the system roots")
    max_body_bytes: int = Field(default=64 * 1024, ge=0, description="Read at most this much")

    def secrets(self, environ: Mapping[str, str]) -> set[str]:
        """Every header value besides: a target that echoes request headers shows them."""
        found = super().secrets(environ) | set(self.headers.values())
        for name, value in self.headers.items():
            if secret_key(name):
                # `Bearer xyz`: a target that echoes it may show the credential alone.
                found |= {value.partition(" ")[2].strip()} - {""}
        return found

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
        from yarl import URL

        url = URL(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"the url must be absolute http:// or https://, e.g. {example}")
    return value


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    import aiohttp
    from yarl import URL

    session = await shared_client(ctx, spec.insecure_skip_verify, spec.ca_file)
    url = URL(spec.url)
    target = f"{url.host}:{url.port}"
    # aiohttp's timeouts bound each step; asyncio.timeout bounds the whole request against a
    # server that drips bytes just fast enough. Connecting (TCP, then TLS) gets half the budget
    # and times out inside aiohttp, which then closes the half-open socket itself.
    remaining = ctx.remaining()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=remaining / 2, sock_read=remaining)
    started = ctx.clock.monotonic()
    peer = Peer()
    recording = _PEER.set(peer)
    try:
        async with (
            asyncio.timeout(remaining),
            session.request(
                spec.method,
                url,
                headers=spec.headers,
                data=spec.body.encode() if spec.body is not None else None,
                allow_redirects=spec.follow_redirects,
                max_redirects=MAX_REDIRECTS,
                timeout=timeout,
                # As sent before: the body as given, with no Content-Type the user did not set.
                skip_auto_headers=("Content-Type",),
            ) as response,
        ):
            tls = peer.facts(ctx.clock.now())
            body, truncated = await _read_capped(response, spec.max_body_bytes)
    except TimeoutError as exc:
        raise ProbeFailure(Reason.TIMEOUT, f"{target}: no answer within {ctx.budget:g}s") from exc
    except aiohttp.TooManyRedirects as exc:
        raise ProbeFailure(Reason.ERROR, f"{target}: too many redirects") from exc
    except aiohttp.ClientError as exc:
        raise transport_failure(exc, target) from exc
    finally:
        _PEER.reset(recording)
    duration = ctx.clock.monotonic() - started
    text = _decode(body, response.charset)
    version = response.version
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    facts: Facts = {
        "status": response.status,
        "duration": duration,
        "http_version": f"HTTP/{version.major}.{version.minor}" if version else None,
        "final_url": str(response.url.with_user(None)),
        "redirects": len(response.history),
        "content_type": media_type or None,
        "body": text,
        "body_size": len(body),
        "body_truncated": truncated,
        **tls,
    }
    # Names in lower case, repeated headers joined with ", " (RFC 9110 5.3).
    headers = response.headers
    facts.update({f"header.{name.lower()}": ", ".join(headers.getall(name)) for name in headers})
    if not truncated and ("json" in media_type or text.lstrip()[:1] in ("{", "[")):
        facts.update(_json_facts(text))
    return facts


async def shared_client(
    ctx: ProbeContext, insecure_skip_verify: bool, ca_file: str | None
) -> aiohttp.ClientSession:
    """The one HTTP client per trust setting, shared by every item (and by other kinds that
    speak HTTP): pooled connections, one TLS setup."""
    import aiohttp

    verify = not insecure_skip_verify
    trusted = ca_file if verify else None
    return await ctx.resources.get(
        (KIND, verify, trusted),
        lambda: _new_session(verify, trusted),
        aiohttp.ClientSession.close,
    )


async def _new_session(verify: bool, ca_file: str | None) -> aiohttp.ClientSession:
    import aiohttp

    # Certificate files are read off the event loop. trust_env=False: a probe measures the
    # target itself, not whatever HTTP_PROXY the daemon inherited. No cookie jar: a probe sees
    # each target fresh, not as an earlier probe of another item left it.
    context = await asyncio.to_thread(trust_context, ca_file) if verify else False
    connector = _recording_connector()(
        ssl=context,
        # No shared cap: one slow target must not queue the probes of every other item.
        limit=0,
        # Every probe resolves its host: a DNS failure shows on the run it happens.
        use_dns_cache=False,
        keepalive_timeout=KEEPALIVE,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
    )


@dataclass
class Peer:
    """The TLS peer of a request's last connection (the final one, after redirects)."""

    certificate: bytes | None = None
    version: str | None = None

    def record(self, connection: Connection) -> None:
        transport = connection.transport
        tls: ssl.SSLObject | None = transport.get_extra_info("ssl_object") if transport else None
        self.certificate = tls.getpeercert(binary_form=True) if tls is not None else None
        self.version = tls.version() if tls is not None else None

    def facts(self, now: float) -> Facts:
        """Days until the server's certificate expires, and the TLS version; none for HTTP."""
        if self.certificate is None:
            return {}
        return {
            "tls_days_left": (not_after(self.certificate).timestamp() - now) / 86400,
            "tls_version": self.version,
        }


_PEER: contextvars.ContextVar[Peer | None] = contextvars.ContextVar("http_peer", default=None)
"""Where the connector records the connection of the request the current task makes."""


@functools.cache
def _recording_connector() -> type[aiohttp.TCPConnector]:
    """aiohttp's TCPConnector, recording each connection it hands out (BaseConnector.connect,
    its public API) while the connection is held: a small body arrives with the headers, and
    aiohttp releases the connection to its pool before the response reaches the probe."""
    import aiohttp

    class RecordingConnector(aiohttp.TCPConnector):
        async def connect(self, *args: Any, **kwargs: Any) -> Connection:
            connection = await super().connect(*args, **kwargs)
            if (peer := _PEER.get()) is not None:
                peer.record(connection)
            return connection

    return RecordingConnector


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the (decompressed) body, and whether there was more. Leaving
    the rest unread closes the connection instead of returning it to the pool."""
    kept = bytearray()
    async for chunk in response.content.iter_any():
        kept += chunk
        if len(kept) > limit:
            return bytes(kept[:limit]), True
    return bytes(kept), False


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


def transport_failure(exc: aiohttp.ClientError, target: str) -> ProbeFailure:
    """aiohttp wraps the socket's own error; that error names the reason."""
    import aiohttp

    if isinstance(exc, aiohttp.InvalidURL | aiohttp.ClientHttpProxyError):
        return ProbeFailure(Reason.ERROR, f"{target}: {exc}")
    # aiohttp's connector errors subclass the errors they wrap but lack their details
    # (a certificate error without its verify_message): the wrapped one is what counts.
    cause: BaseException = exc
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
    elif isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
    return socket_failure(cause, target) or ProbeFailure(Reason.CONNECT, f"{target}: {exc}")
