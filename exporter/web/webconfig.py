"""`serve --web.config.file`: the exporter-toolkit web config (TLS, bcrypt Basic auth, response
headers) read into a typed model, checked at start, and turned into uvicorn's TLS settings."""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from exporter.issues import ConfigError, ConfigIssue

MAX_FILE = 256 * 1024
"""Bytes: a web config is a few lines; anything larger is a mistake, refused before parsing."""

# The toolkit sets only these headers, with these values where they are an enumeration
# (exporter-toolkit web/handler.go, extraHTTPHeaders): the rest of the Prometheus ecosystem
# refuses the others, and so do we.
EXTRA_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Toolkit settings that have no equivalent in Python's ssl module or in this server.
_UNSUPPORTED = {
    "cert": "give the certificate as cert_file",
    "key": "give the key as key_file",
    "client_ca": "give the CA as client_ca_file",
    "cipher_suites": "Go cipher suite names have no OpenSSL equivalent; remove it",
    "curve_preferences": "Go curve names have no OpenSSL equivalent; remove it",
    "prefer_server_cipher_suites": "remove it",
    "client_allowed_sans": "remove it, or restrict the client CA instead",
    "rate_limit": "remove it, or rate-limit in a proxy",
}
# A user name that is not configured is checked against this hash ("fakepassword", as the
# toolkit does), so the time taken does not tell which user names exist.
# What HTTP allows in a header value (RFC 9110 field-value, Latin-1), so h11 can send it.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# bcrypt hashes at most 72 bytes of a password and refuses longer ones.
BCRYPT_MAX_BYTES = 72
_DECOY = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSServerConfig(_Strict):
    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)
    client_auth_type: Literal[
        "NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"
    ] = "NoClientCert"
    client_ca_file: str | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS13"


class HTTPServerConfig(_Strict):
    http2: bool = True
    """Accepted for compatibility; this server speaks HTTP/1.1."""
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _known_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if name not in EXTRA_HEADERS:
                raise _at(
                    name,
                    f"HTTP header {name!r} can not be configured"
                    f" (allowed: {', '.join(EXTRA_HEADERS)})",
                )
            if not _FIELD_VALUE.fullmatch(value):
                raise _at(
                    name,
                    f"invalid value for {name}: only printable Latin-1 characters,"
                    " no line breaks or control characters",
                )
            allowed = EXTRA_HEADERS[name]
            if allowed and value not in allowed:
                raise _at(
                    name,
                    f"invalid value for {name}: expected one of {list(allowed)}, got {value!r}",
                )
        return headers


class WebConfig(_Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not _is_bcrypt(hashed):
                raise _at(
                    user,
                    f"the password of user {user!r} is not a bcrypt hash"
                    " (make one with: htpasswd -nBC 10 '' | tr -d ':\\n')",
                )
        return users

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The extra response headers, encoded for ASGI."""
        return [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.http_server_config.headers.items()
            if value
        ]


def _at(key: str, message: str) -> PydanticCustomError:
    """A validation error about one key of a mapping, so its line can be named."""
    return PydanticCustomError("web_config", "{message}", {"message": message, "key": key})


def _is_bcrypt(hashed: str) -> bool:
    try:
        bcrypt.checkpw(b"", hashed.encode())
    except ValueError:
        return False
    return True


class BasicAuth:
    """Checks Basic credentials against the file's bcrypt hashes. bcrypt is slow on purpose
    (~70 ms at cost 10), so it runs in a thread, one at a time, and a verdict is cached by
    (user, HMAC of the password) so a scraper's every request does not pay it."""

    CACHE_SIZE = 1024

    def __init__(self, users: dict[str, str]) -> None:
        self._users = {u: h.encode() for u, h in users.items()}
        self._key = os.urandom(32)
        self._verdicts: dict[tuple[str, bytes], bool] = {}
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    async def check(self, user: str, password: str) -> bool:
        fingerprint = hmac.digest(self._key, password.encode(), "sha256")
        key = (user, fingerprint)
        if (verdict := self._verdicts.get(key)) is not None:
            return verdict
        hashed = self._users.get(user, _DECOY)
        secret = password.encode()
        if len(secret) > BCRYPT_MAX_BYTES:  # bcrypt refuses it: no hash can match
            return False
        async with self._lock:
            matches = await asyncio.to_thread(bcrypt.checkpw, secret, hashed)
        verdict = matches and user in self._users
        if len(self._verdicts) >= self.CACHE_SIZE:
            # Wrong passwords must not push out the logins that work (a scraper's).
            self._verdicts = {k: v for k, v in self._verdicts.items() if v}
            if len(self._verdicts) >= self.CACHE_SIZE:
                self._verdicts.clear()
        self._verdicts[key] = verdict
        return verdict


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """The web config in `path`, with its files checked (certificates load, the CA exists);
    ConfigError with FILE:LINE for each problem."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()[: MAX_FILE + 1]
    except OSError as exc:
        raise _error(file, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE:
        raise _error(file, None, f"larger than {MAX_FILE} bytes; a web config is a few lines")
    try:
        node = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or exc
        raise _error(file, line, f"not valid YAML: {problem}") from None
    lines: dict[tuple[str | int, ...], int] = {}
    data = _plain(node, (), lines, set(), file) if node is not None else {}
    if not isinstance(data, dict):
        raise _error(file, 1, "the web config must be a mapping (tls_server_config, ...)")
    issues = _unsupported(data, lines, file)
    if issues:
        raise ConfigError(issues)
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_issue(file, e, lines) for e in exc.errors()]) from None
    tls = config.tls_server_config
    if tls is not None:
        # Relative paths are relative to the web config file, as in the toolkit.
        base = Path(path).parent
        tls = tls.model_copy(
            update={
                name: str(base / value)
                for name in ("cert_file", "key_file", "client_ca_file")
                if (value := getattr(tls, name))
            }
        )
        config = config.model_copy(update={"tls_server_config": tls})
        _check_tls(tls, file, lines)
    return config


def _plain(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    seen: set[int],
    file: str,
    line: int = 1,
) -> Any:
    """Plain data from composed YAML, with the line of every path. An alias (the same node seen
    twice; `line` is where it is used) is refused: a web config has no use for one, and it is
    how YAML bombs grow."""
    if id(node) in seen:
        raise _error(file, line, "YAML aliases are not supported here")
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            key_line = lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, (*path, key), lines, seen, file, key_line)
        return out
    if isinstance(node, yaml.SequenceNode):
        start = node.start_mark.line + 1
        return [
            _plain(child, (*path, i), lines, seen, file, start)
            for i, child in enumerate(node.value)
        ]
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise _error(file, node.start_mark.line + 1, f"not a valid value: {exc}") from None


def _unsupported(
    data: dict[str, Any], lines: dict[tuple[str | int, ...], int], file: str
) -> list[ConfigIssue]:
    issues = []
    tls = data.get("tls_server_config")
    for where, block in (("tls_server_config", tls), ("", data)):
        if not isinstance(block, dict):
            continue
        for key in block:
            if key in _UNSUPPORTED and (where or key == "rate_limit"):
                path = (where, key) if where else (key,)
                issues.append(
                    ConfigIssue(
                        file,
                        lines.get(path),
                        None,
                        f"{'.'.join(path)}: not supported by readiness-exporter:"
                        f" {_UNSUPPORTED[key]}",
                    )
                )
    return issues


def _issue(file: str, error: Any, lines: dict[tuple[str | int, ...], int]) -> ConfigIssue:
    loc = tuple(error["loc"])
    if key := (error.get("ctx") or {}).get("key"):
        loc = (*loc, key)
    line = next((lines[loc[:end]] for end in range(len(loc), -1, -1) if loc[:end] in lines), None)
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown setting (see exporter-toolkit's docs/web-configuration.md)"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return ConfigIssue(file, line, None, f"{where}: {message}" if where else message)


def _check_tls(tls: TLSServerConfig, file: str, lines: dict[tuple[str | int, ...], int]) -> None:
    def line(key: str) -> int | None:
        return lines.get(("tls_server_config", key), lines.get(("tls_server_config",)))

    if tls.client_auth_type != "NoClientCert" and not tls.client_ca_file:
        raise _error(
            file,
            line("client_auth_type"),
            f"tls_server_config.client_auth_type {tls.client_auth_type} needs client_ca_file",
        )
    if _TLS_VERSIONS[tls.min_version] > _TLS_VERSIONS[tls.max_version]:
        raise _error(
            file, line("min_version"), "tls_server_config.min_version is above max_version"
        )
    try:
        tls_context(tls)
    except (OSError, ssl.SSLError) as exc:
        raise _error(
            file, line("cert_file"), f"tls_server_config: cannot load the certificates: {exc}"
        ) from None


def tls_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """The server's TLS context as the file describes it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    context.maximum_version = _TLS_VERSIONS[tls.max_version]
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
    return context


def uvicorn_tls(config: WebConfig | None) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the file's TLS settings (none without TLS)."""
    tls = config.tls_server_config if config else None
    if tls is None:
        return {}

    def factory(_config: object, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return tls_context(tls)

    return {
        "ssl_certfile": tls.cert_file,
        "ssl_keyfile": tls.key_file,
        "ssl_ca_certs": tls.client_ca_file,
        "ssl_cert_reqs": _CLIENT_AUTH[tls.client_auth_type],
        # The public hook for what the plain arguments cannot say (the TLS version bounds).
        "ssl_context_factory": factory,
    }


def _error(file: str, line: int | None, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(file, line, None, message)])
