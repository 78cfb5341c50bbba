"""The HTTP edge every request crosses before a route: security headers on every response, the
web config's Basic auth, and the request-forgery rules for state-changing requests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exporter.web.auth import Tokens, Unauthorized, basic_credentials
from exporter.web.webconfig import BasicAuth, WebConfig

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Scripts and styles come from the app's own files; style attributes stay allowed for the
# computed widths of the score bars (no script can run from one).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)
WEB_USER = "web_user"
"""Key in the request's state: the web config user a request logged in as."""


class Edge:
    """ASGI middleware in front of every route (see the module docstring). `tokens` and
    `allowed_origins` are read per request, so a config reload changes them."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: Callable[[], Tokens],
        allowed_origins: Callable[[], Sequence[str]],
        web: WebConfig | None = None,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.allowed_origins = allowed_origins
        self.basic_auth = BasicAuth(web.basic_auth_users if web else {})
        extra = web.headers if web else []
        configured = {name for name, _ in extra}
        self.headers = [*(h for h in SECURITY_HEADERS if h[0] not in configured), *extra]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in self.headers if h[0] not in present),
                ]
            await send(message)

        headers = Headers(scope=scope)
        refusal = await self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _refusal(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        if self.basic_auth.enabled:
            user = await self._web_user(headers.get("authorization"))
            if user is None:
                return JSONResponse(
                    {"error": "log in: this server needs a user of its web config or an API token"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="readiness-exporter"'},
                )
            if user:
                scope.setdefault("state", {})[WEB_USER] = user
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and not self._trusted(origin, scope, headers):
            return _refuse(403, f"origin {origin} may not change state here")
        fetch_site = headers.get("sec-fetch-site", "").lower()
        if origin is None and fetch_site in ("cross-site", "same-site"):
            return _refuse(403, "a request from another site may not change state here")
        if not _is_json(headers) and (_has_body(headers) or origin or fetch_site):
            return _refuse(415, "send the body as Content-Type: application/json")
        return None

    async def _web_user(self, authorization: str | None) -> str | None:
        """The web config user the credentials name; "" for a valid API token (the API's
        roles then apply); None when neither."""
        # An API token first: it costs no bcrypt, and may be longer than bcrypt takes.
        try:
            self.tokens().authenticate(authorization)
        except Unauthorized:
            pass
        else:
            return ""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() == "basic":
            user, password = basic_credentials(value)
            if user is not None and await self.basic_auth.check(user, password):
                return user
        return None

    def _trusted(self, origin: str, scope: Scope, headers: Headers) -> bool:
        claimed = _origin(origin)
        if claimed is None:  # "null" (sandboxed frames, file: pages) or malformed
            return False
        own = _origin(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
        return claimed in {own, *(_origin(o) for o in self.allowed_origins())}


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """scheme, host and port (the default one filled in) of an origin, or None if malformed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def _is_json(headers: Headers) -> bool:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json"


def _has_body(headers: Headers) -> bool:
    """A POST from curl or a config reloader often has no body and no Content-Type: that is
    no form a browser could send (forms always have a type, and browsers add an Origin)."""
    length = headers.get("content-length", "0").strip()
    return "transfer-encoding" in headers or length not in ("", "0")


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
