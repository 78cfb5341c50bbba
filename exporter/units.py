"""Parsing of the human units config and conditions use: durations and byte sizes."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTP]i?B|B)$")
_SIZE_FACTOR = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "PB": 10**15,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "PiB": 2**50,
}


def is_duration(text: str) -> bool:
    """True when `text` reads as a duration such as `500ms`, `30s`, `1h30m`, `7d`."""
    return bool(_DURATION.match(text.strip()))


def parse_duration(text: object) -> timedelta:
    """`500ms`, `30s`, `26h`, `7d`, `1h30m` (or a bare number of seconds) as a timedelta.
    ValueError for anything else, including a list, infinity and more than timedelta holds."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"expected a duration such as 30s, got {_shown(text)}")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise ValueError(f"expected a duration such as 30s, got {text!r}")
        if text < 0:
            raise ValueError(f"a duration cannot be negative: {text!r}")
        return _seconds(text, text)
    value = text.strip()
    if not _DURATION.match(value):
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit (ms, s, m, h, d, w), "
            "e.g. 30s or 1h30m"
        )
    return _seconds(
        sum(float(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(value)), text
    )


def _seconds(seconds: float, text: object) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # also for infinity: the same answer, a duration too long to hold
        raise ValueError(f"duration {text!r} is too long") from None


def _shown(value: object) -> str:
    kind = {list: "a list", dict: "a mapping", type(None): "nothing"}.get(type(value))
    return kind or repr(value)


def is_size(text: str) -> bool:
    """True when `text` reads as a byte size such as `512KiB`, `1MiB`, `10GB`."""
    return bool(_SIZE.match(text.strip()))


def parse_size(text: str | int) -> int:
    """`512KiB`, `1MiB`, `10GB`, `100B` (or a bare integer) as a number of bytes."""
    if isinstance(text, bool):
        raise ValueError(f"expected a size such as 1MiB, got {text!r}")
    if isinstance(text, int):
        return text
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(
            f"invalid size {text!r}: use a number with a unit "
            "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    return int(float(match.group(1)) * _SIZE_FACTOR[match.group(2)])


def format_duration(delta: timedelta | float) -> str:
    """A compact human form of a duration, e.g. `1d2h`, `30s`, `250ms`."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    remaining = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
