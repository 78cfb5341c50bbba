"""The one place that keeps secrets out of /metrics, /status and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "<redacted>"

# user:password@ in URLs and DSNs; password=... in libpq key/value DSNs and query strings.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@\s/]+)@")
_KV_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api_key|apikey)=([^&\s;]+)")
SECRET_NAME = re.compile(r"(?i)(pass|secret|token|key|credential|auth|dsn|cookie|session|private)")


class Redactor:
    """Masks known secret values and anything shaped like a credential in text."""

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        unique = {s for s in secrets if len(s) >= 4}
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        value = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:{MASK}@", value)
        return _KV_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", value)

    def value(self, value: Any) -> Any:
        """Redacts strings anywhere inside dicts, lists and tuples."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


REDACTOR = Redactor()
"""Process-wide: the config loader feeds it, every output path (status, logs, errors) uses it."""
