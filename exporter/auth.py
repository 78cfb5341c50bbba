"""Bearer tokens for the write API: secrets read from the environment once, kept only as
SHA-256 hashes, compared in constant time; each token has a name (for the audit) and roles."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from exporter.config import ApiToken, Role

MIN_SECRET_LENGTH = 16


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

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer ...` header, or Unauthorized."""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
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
