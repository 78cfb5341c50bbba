"""The one place that keeps secrets out of every output and out of the store, in linear time."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MASK = "<redacted>"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: replacing every `abc` in a page would hide the page, not a
secret worth the name."""

SECRET_NAME = re.compile(r"(?i)(pass|secret|token|key|credential|auth|dsn|cookie|session|private)")
"""Names of environment variables (and spec fields) whose values are secrets."""

SECRET_KEY_ENDINGS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "key",
    "signature",
    "sig",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "cookie",
    "session",
    "sessionid",
)
"""A query-string key, header, JSON field or fact name ending in one of these holds a
credential (`access_token`, `X-Amz-Signature`, `header.set-cookie`, `json.api_key`)."""

# Every pattern below matches at a fixed anchor and its quantifiers are possessive (`*+`, `++`,
# `?+`), so no position is scanned twice: masking costs time proportional to the text, where
# the former backtracking patterns took seconds on 64 KiB of letters.
_AUTHORITY = re.compile(r"[^/\s?#]*+")
# A key is taken whole, then it must end in a secret word (one fixed-width lookbehind per
# word): only secret keys match, so `https://h/?api_key=...` is not swallowed by `https:`.
_KEY_VALUE = re.compile(
    r"(?i)(?<![\w.\-])(?P<key>[a-z_][\w.\-]*+)"
    + "(?:"
    + "|".join(f"(?<={re.escape(word)})" for word in SECRET_KEY_ENDINGS)
    + ")"
    + r"(?P<sep>[\"']?+[ \t]*+[=:][ \t]*+[\"']?+)"
    + r"(?P<scheme>(?:basic|bearer|token|digest)[ \t]++)?+"
    + r"(?P<value>[^\s&;,\"'<>=][^\s&;,\"'<>]*+)"
)
_SCHEME_CREDENTIAL = re.compile(
    r"(?<![\w\-])(?P<scheme>(?i:basic|bearer)[ \t]++)(?P<value>[A-Za-z0-9+/=._~\-]++)"
)


def secret_key(name: str) -> bool:
    """Whether a key or field named `name` holds a credential."""
    return name.lower().endswith(SECRET_KEY_ENDINGS)


class Redactor:
    """Masks registered secret values, then anything shaped like a credential: the password
    of `scheme://user:password@`, secret-named `key=value` and `"key": "value"` pairs, and the
    credential after `Basic`/`Bearer`.

    No process-wide instance: whoever loads a config (a CLI verb, the Daemon) builds one from
    its secrets and hands it to everything that writes output, so one config's secrets never
    decide what another's output shows."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Replaces the registered secrets (a reloaded config brings its own)."""
        unique: set[str] = set()
        for secret in secrets:
            unique |= written_forms(secret)
        # Longest first, so a secret containing another is masked whole.
        self._secrets = tuple(
            sorted((s for s in unique if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)
        )

    def text(self, value: str) -> str:
        value = replace_url_passwords(self.known(value), MASK)
        # Substring tests first, at C speed: the patterns scan ~50 ns a character, and most
        # text (a health body, a header) holds no secret word at all.
        lower = value.lower()
        if any(word in lower for word in SECRET_KEY_ENDINGS):
            value = _KEY_VALUE.sub(_key_value, value)
        if "basic" in lower or "bearer" in lower:
            value = _SCHEME_CREDENTIAL.sub(_scheme_credential, value)
        return value

    def optional(self, value: str | None) -> str | None:
        """`text` for a field that may be empty (who approved a waiver, if anyone)."""
        return None if value is None else self.text(value)

    def known(self, text: str) -> str:
        """Masks only the registered secrets, in every written form: for a whole page or
        report whose parts went through `text` or `value` already, so a secret that reached it
        some other way (a note, a title) is caught at C speed, without a second pattern scan."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def value(self, value: Any) -> Any:
        """Redacts strings anywhere inside dicts, lists and tuples; a secret-named key's
        string value is masked whole."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: MASK if isinstance(v, str) and v and secret_key(str(k)) else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def written_forms(secret: str) -> set[str]:
    """A secret as it may appear in an output: as written, inside a URL, escaped in HTML or
    XML text and attributes (pages, JUnit reports) and inside a JSON string."""
    html = escape(secret, quote=False)
    return {
        secret,
        quote(secret, safe=""),
        html,
        escape(secret),
        html.replace('"', "&quot;"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def url_passwords(text: str) -> Iterator[tuple[int, int]]:
    """Where `scheme://user:password@host` holds a password: the span of each `:password`.
    The one rule for what the loader refuses in a file, what import leaves out of the config it
    writes and what every output masks. A scan from each `://` to the end of its authority,
    which stops at the next `/`: linear in the text."""
    start = text.find("://")
    while start >= 0:
        begin = start + 3
        end = _AUTHORITY.match(text, begin).end()  # type: ignore[union-attr]
        at = text.rfind("@", begin, end)
        colon = text.find(":", begin, at) if at > begin else -1
        if colon >= 0 and at > colon + 1:
            yield colon, at
        # The authority stops at a `/`, so it never reaches the next `://`: each character is
        # scanned once.
        start = text.find("://", begin)


def has_url_password(text: str) -> bool:
    return next(url_passwords(text), None) is not None


def replace_url_passwords(text: str, password: str = "") -> str:
    """`scheme://user:password@host` → `scheme://user:<password>@host`, or, with no
    replacement, `scheme://user@host`."""
    out: list[str] = []
    done = 0
    for colon, at in url_passwords(text):
        if password and text[colon + 1 : at] == password:
            continue  # masked already
        out += [text[done:colon], f":{password}" if password else ""]
        done = at
    return "".join(out) + text[done:] if out else text


def _key_value(match: re.Match[str]) -> str:
    return f"{match['key']}{match['sep']}{match['scheme'] or ''}{MASK}"


def _scheme_credential(match: re.Match[str]) -> str:
    credential = match["value"]
    # `Basic realm="x"`, "Bearer tokens are..." are not credentials; one has digits or symbols.
    if credential.rstrip("=").isalpha():
        return match[0]
    return f"{match['scheme']}{MASK}"


def credentials(spec: Any, environ: Mapping[str, str]) -> set[str]:
    """At any depth of a spec: the values of the variables its `*_env` fields name (tokens,
    passwords); the values of secret-named keys (a command's `env:`, a header); passwords and
    secret query parameters of its URLs and DSNs (as written and percent-decoded); and the
    `Authorization: Basic` value an HTTP client derives from a URL's or `basic_auth`'s user
    and password, which a target that echoes request headers would show."""
    found: set[str] = set()
    if isinstance(spec, list):
        for value in spec:
            found |= credentials(value, environ)
        return found
    if not isinstance(spec, dict):
        return found
    for name, value in spec.items():
        if isinstance(value, dict | list):
            found |= credentials(value, environ)
        elif not isinstance(value, str) or not value:
            continue
        elif name.endswith("_env") and environ.get(value):
            found.add(environ[value])
            if name == "password_env" and isinstance(spec.get("username"), str):
                found |= _basic(spec["username"], environ[value])
        elif secret_key(name):
            found.add(value)
        elif "://" in value:
            found |= url_credentials(value)
    return found


def url_credentials(url: str) -> set[str]:
    """The password and secret query parameters of a URL or DSN, as written and decoded,
    and the `Authorization: Basic` value a client derives from its user and password."""
    # Split by hand: urlsplit and parse_qsl on every URL of a 10,000-item config cost 0.3 s.
    query = url.partition("?")[2].partition("#")[0]
    found = {
        v
        for key, _, value in (pair.partition("=") for pair in query.split("&") if pair)
        if value and secret_key(unquote(key))
        for v in (value, unquote(value))
    }
    if "@" not in url:
        return found
    try:
        parts = urlsplit(url)
        user, password = parts.username or "", parts.password
    except ValueError:
        return found
    if password:
        found |= {password, unquote(password)}
        found |= _basic(user, password) | _basic(unquote(user), unquote(password))
    return found


def _basic(user: str, password: str) -> set[str]:
    """The credential of `Authorization: Basic`, in each encoding a client may use."""
    found = set()
    for encoding in ("utf-8", "latin-1"):
        try:
            found.add(base64.b64encode(f"{user}:{password}".encode(encoding)).decode())
        except UnicodeEncodeError:
            continue
    return found
