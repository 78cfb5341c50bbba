"""Bearer tokens for the write API: secrets read from the environment once, kept only as
SHA-256 hashes, compared in constant time; each token has a name (for the audit) and roles."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.roles import Role

if TYPE_CHECKING:
    from exporter.config import ApiToken

MIN_SECRET_LENGTH = 16
_CSRF_KEY = os.urandom(32)
"""Per process: a restart invalidates the anti-forgery tokens of open pages (reload them)."""


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's name and what it may do."""

    name: str
    roles: frozenset[Role]


class Unauthorized(Exception):
    """No token, or one that matches none configured (HTTP 401)."""


class Forbidden(Exception):
    """A valid token without the role the route needs (HTTP 403)."""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Tokens:
    """The configured tokens. With none configured, reads are open and writes are refused."""

    def __init__(self, tokens: Iterable[tuple[bytes, Principal]] = ()) -> None:
        self._tokens = tuple(tokens)

    @classmethod
    def from_config(cls, tokens: Iterable[ApiToken], environ: Mapping[str, str]) -> Tokens:
        """Reads each token's secret from its env variable; ValueError names every one that is
        missing or too short to resist guessing."""
        problems = []
        entries = []
        for token in tokens:
            secret = environ.get(token.token_env, "")
            if len(secret) < MIN_SECRET_LENGTH:
                state = "is not set" if not secret else f"is shorter than {MIN_SECRET_LENGTH}"
                problems.append(
                    f"api token {token.name}: environment variable {token.token_env} {state}"
                    " (set it to a random secret, e.g. `openssl rand -hex 32`)"
                )
                continue
            entries.append((_digest(secret), Principal(token.name, frozenset(token.roles))))
        if problems:
            raise ValueError("\n".join(problems))
        return cls(entries)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer ...` header, or Unauthorized. A browser
        may send the token as the password of HTTP Basic auth (any user name)."""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() == "basic":
            secret = basic_credentials(secret)[1]
        elif scheme.lower() != "bearer":
            secret = ""
        if not secret.strip():
            raise Unauthorized("send Authorization: Bearer <token>")
        digest = _digest(secret.strip())
        found = None
        # Compare against every token, so the time taken does not tell which one came close.
        for known, principal in self._tokens:
            if hmac.compare_digest(known, digest):
                found = principal
        if found is None:
            raise Unauthorized("unknown token")
        return found

    def authorize(self, authorization: str | None, role: Role) -> Principal | None:
        """The principal allowed `role`. Reads are open while no token is configured (None);
        writes never are."""
        if not self._tokens:
            if role is Role.READ:
                return None
            raise Forbidden(
                f"the {role.value} API is disabled: configure exporter.api_tokens with a token"
                f" that has role {role.value}"
            )
        principal = self.authenticate(authorization)
        # admin implies every role; attest implies read, as a writer may see the history.
        granted = set(principal.roles)
        if Role.ADMIN in granted:
            granted |= {Role.ATTEST, Role.READ}
        if Role.ATTEST in granted:
            granted.add(Role.READ)
        if role not in granted:
            raise Forbidden(f"token {principal.name} lacks role {role.value}")
        return principal


def basic_credentials(credentials: str) -> tuple[str | None, str]:
    """User and password of the value of an `Authorization: Basic` header (None, "") if it is
    not one."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, "")


def is_basic(authorization: str | None) -> bool:
    return (authorization or "").partition(" ")[0].lower() == "basic"


def csrf_token(principal: str) -> str:
    """The anti-forgery token of a login: the /status page embeds it and its script sends it
    back, so a write carrying a browser's cached Basic login also proves it came from our page."""
    return hmac.new(_CSRF_KEY, principal.encode(), hashlib.sha256).hexdigest()


def check_csrf(principal: str, sent: str | None) -> None:
    """Forbidden unless `sent` is the anti-forgery token of `principal`."""
    if not sent or not hmac.compare_digest(sent, csrf_token(principal)):
        raise Forbidden(
            "a write with a Basic login needs the X-CSRF-Token header from the /status page;"
            " scripts send Authorization: Bearer instead"
        )
