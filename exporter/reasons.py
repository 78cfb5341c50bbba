"""The closed set of reasons a result carries (DESIGN.md): bounded label values for on-call."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    OK = "ok"
    CONDITION = "condition"  # the probe ran; a condition failed
    TIMEOUT = "timeout"
    CONNECT = "connect"  # refused, unreachable, reset
    DNS = "dns"
    TLS = "tls"  # handshake or verification
    AUTH = "auth"  # credentials rejected
    ERROR = "error"  # the probe itself failed unexpectedly
    NOT_ATTESTED = "not_attested"  # manual item with no valid attestation
    NOT_RUN = "not_run"  # defined, not run yet
    UNCONFIGURED = "unconfigured"  # an imported probe whose placeholder is unset: never run
