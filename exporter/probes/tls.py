"""`tls`: the certificate a TLS server presents, whether it verifies, and when it expires."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec, socket_failure
from exporter.reasons import Reason
from exporter.times import iso

# cryptography is imported inside the functions that read certificates: a process that never
# probes TLS would otherwise load it (a tenth of a second and several MB).
if TYPE_CHECKING:
    from cryptography import x509

KIND = "tls"
DEFAULT_EXPECT: tuple[str, ...] = (
    "days_left > 14",
    "chain_valid == true",
    "hostname_valid == true",
)
FACTS: tuple[str, ...] = (
    "days_left",
    "not_after",
    "not_before",
    "version",
    "cipher",
    "issuer",
    "subject",
    "sans",
    "hostname_valid",
    "chain_valid",
    "verify_error",
    "duration",
)


_VERSIONS = {"TLS1.2": ssl.TLSVersion.TLSv1_2, "TLS1.3": ssl.TLSVersion.TLSv1_3}


class Spec(ProbeSpec):
    host: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, description="SNI and name to verify; the host")
    ca_file: str | None = Field(default=None, description="Trusted besides the system roots")
    min_version: Literal["TLS1.2", "TLS1.3"] | None = None


def trust_context(ca_file: str | None) -> ssl.SSLContext:
    """The system roots plus `ca_file`: the one trust store of the `tls` and `http` kinds.
    Reads files, so call it off the event loop."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            # A configuration mistake, not the server's fault: not `connect` nor `tls`.
            raise ProbeFailure(Reason.ERROR, f"cannot load ca_file {ca_file}: {exc}") from exc
    return context


def not_after(der: bytes) -> datetime:
    """The notAfter of a DER certificate, timezone-aware UTC."""
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    from cryptography import x509

    server_name = spec.server_name or spec.host
    target = f"{spec.host}:{spec.port}"
    started = ctx.clock.monotonic()
    verifying, accepting = await ctx.resources.get(
        (KIND, spec.ca_file, spec.min_version),
        lambda: asyncio.to_thread(_contexts, spec.ca_file, spec.min_version),
    )
    try:
        async with asyncio.timeout(ctx.remaining()):
            # Verify first (the common case needs one handshake); when the chain does not
            # verify, shake hands again accepting anything, so a bad certificate is evidence.
            try:
                session = await _handshake(spec.host, spec.port, server_name, verifying)
                verify_error = None
            except ssl.SSLCertVerificationError as exc:
                verify_error = exc.verify_message or exc.reason or "verification failed"
                session = await _handshake(spec.host, spec.port, server_name, accepting)
    except TimeoutError as exc:
        raise ProbeFailure(
            Reason.TIMEOUT, f"{target}: no TLS handshake within {ctx.budget:g}s"
        ) from exc
    except OSError as exc:
        raise socket_failure(exc, target) or ProbeFailure(
            Reason.CONNECT, f"{target}: {exc}"
        ) from exc
    der, version, cipher = session
    cert = x509.load_der_x509_certificate(der)
    sans = _sans(cert)
    return {
        "days_left": (cert.not_valid_after_utc.timestamp() - ctx.clock.now()) / 86400,
        "not_after": iso(cert.not_valid_after_utc.timestamp()),
        "not_before": iso(cert.not_valid_before_utc.timestamp()),
        "version": version,
        "cipher": cipher,
        "issuer": cert.issuer.rfc4514_string(),
        "subject": cert.subject.rfc4514_string(),
        "sans": sans,
        "hostname_valid": hostname_matches(server_name, sans),
        "chain_valid": verify_error is None,
        "verify_error": verify_error,
        "duration": ctx.clock.monotonic() - started,
    }


def _contexts(
    ca_file: str | None, min_version: str | None
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A context that verifies the chain and one that accepts any certificate; neither checks
    the hostname, which `hostname_matches` judges separately so both facts are always known."""
    verifying = trust_context(ca_file)
    verifying.check_hostname = False
    accepting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    accepting.check_hostname = False
    accepting.verify_mode = ssl.CERT_NONE
    if min_version is not None:
        for context in (verifying, accepting):
            context.minimum_version = _VERSIONS[min_version]
    return verifying, accepting


async def _handshake(
    host: str, port: int, server_name: str, context: ssl.SSLContext
) -> tuple[bytes, str, str]:
    """Connects, shakes hands and hangs up: the leaf certificate (DER), version and cipher."""
    _, writer = await asyncio.open_connection(
        host,
        port,
        ssl=context,
        server_hostname=server_name,
        # A server that never answers close_notify must not hold the probe for the default 30s.
        ssl_shutdown_timeout=1.0,
    )
    try:
        tls: ssl.SSLObject = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True)
        cipher = tls.cipher()
        version = tls.version()
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if der is None or cipher is None or version is None:
        raise ssl.SSLError("the server presented no certificate")
    return der, version, cipher[0]


def hostname_matches(name: str, sans: list[str]) -> bool:
    """RFC 6125 matching of `name` against the certificate's SANs (the subject CN is ignored,
    as browsers do): IP addresses exactly, DNS names case-insensitively, a `*` only as the
    whole left-most label and standing for exactly one label."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        return any(_as_ip(san) == address for san in sans)
    wanted = name.rstrip(".").lower()
    with contextlib.suppress(UnicodeError):
        wanted = wanted.encode("idna").decode("ascii")
    for san in sans:
        pattern = san.rstrip(".").lower()
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted:
            first, rest = wanted.split(".", 1)
            if first and rest == pattern[2:]:
                return True
    return False


def _sans(cert: x509.Certificate) -> list[str]:
    from cryptography import x509

    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = extension.value.get_values_for_type(x509.DNSName)
    addresses = extension.value.get_values_for_type(x509.IPAddress)
    return [*names, *(str(a) for a in addresses)]


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
