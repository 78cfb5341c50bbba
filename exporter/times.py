"""How a time or a span is written, in one place: ISO 8601 for machines, minutes for people."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def iso(ts: float | None) -> str | None:
    """For machines (/status JSON, the audit API): ISO 8601 in UTC with `Z`; None stays None
    (Unix second 0 is 1970-01-01T00:00:00Z, a time like any other)."""
    return _utc(ts).isoformat().replace("+00:00", "Z") if ts is not None else None


def when(ts: float) -> str:
    """For people (reports, the status page): to the minute, UTC."""
    return _utc(ts).strftime("%Y-%m-%d %H:%M UTC")


def exact(ts: float) -> str:
    """For people, to the second (when an attestation was made, when it lapsed), UTC."""
    return _utc(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(seconds: float) -> str:
    """A span for people, to two units, rounded down: `3 d 4 h`, `23 h 59 min`, `12 s`."""
    left = int(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size} {unit}")
            left %= size
        if len(parts) == 2 or (parts and left == 0):
            break
    return " ".join(parts)


def parse_instant(text: str) -> float:
    """Unix seconds of an ISO 8601 date or time (UTC unless it names a zone) or of a number
    of Unix seconds; ValueError otherwise."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{text!r} is not a time")
        return seconds
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
