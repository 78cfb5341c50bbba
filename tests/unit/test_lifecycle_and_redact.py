"""Pure maths of due times and lapses, unit parsing, and the one place that masks secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exporter.lifecycle import due_at, is_lapsed, is_live, score
from exporter.redact import MASK, Redactor
from exporter.units import format_duration, parse_duration, parse_size

DAY = timedelta(days=1)


def test_due_counts_from_last_success_or_first_seen() -> None:
    assert due_at(DAY, last_success=1000.0, first_seen=0.0) == 1000.0 + 86400
    assert due_at(DAY, last_success=None, first_seen=500.0) == 500.0 + 86400


def test_lapse_waits_for_grace() -> None:
    due = 86400.0
    grace = timedelta(hours=2)
    assert not is_lapsed(due, due, grace)
    assert not is_lapsed(due + 7200, due, grace)
    assert is_lapsed(due + 7201, due, grace)


def test_live_after_go_live_only() -> None:
    go_live = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    assert not is_live(go_live - 1, go_live)
    assert is_live(go_live, go_live)
    assert not is_live(go_live, None)


def test_score() -> None:
    assert score(3, 4) == 0.75
    assert score(0, 0) == 1.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("26h", 93600),
        ("7d", 604800),
        ("1h30m", 5400),
        (45, 45),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["30x", "", "s", "-5s", "1.5.2s", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [("512KiB", 524288), ("1MiB", 1048576), ("10GB", 10**10), ("100B", 100), (7, 7)],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_format_duration() -> None:
    assert format_duration(timedelta(days=1, hours=2)) == "1d2h"
    assert format_duration(0.25) == "250ms"


def test_redactor_masks_known_secrets_and_credential_shapes() -> None:
    redactor = Redactor()
    redactor.update(["s3cret-value", "abc"])  # too short to mask safely: ignored
    assert redactor.text("token s3cret-value here") == f"token {MASK} here"
    assert (
        redactor.text("postgresql://app:hunter2@db:5432/x") == f"postgresql://app:{MASK}@db:5432/x"
    )
    assert redactor.text("host=db password=hunter2 user=app") == f"host=db password={MASK} user=app"
    assert redactor.text("https://h/?api_key=k3y&x=1") == f"https://h/?api_key={MASK}&x=1"
    assert redactor.value({"a": ["s3cret-value", 1]}) == {"a": [MASK, 1]}
    assert redactor.text("abc") == "abc"
