"""Interval items run on a fixed grid per item: spread over the interval, no drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from exporter.scheduler import PhasedInterval

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_runs_stay_on_the_grid_without_drift() -> None:
    trigger = PhasedInterval(60.0, "shop/health")
    first = trigger.get_next_fire_time(None, T0)
    assert first is not None

    runs = [first]
    for _ in range(100):
        following = trigger.get_next_fire_time(runs[-1], runs[-1])
        assert following is not None
        runs.append(following)

    assert runs[-1] - runs[0] == timedelta(seconds=6000)
    assert {(b - a).total_seconds() for a, b in pairwise(runs)} == {60.0}


def test_the_phase_is_stable_and_differs_between_items() -> None:
    one = PhasedInterval(60.0, "shop/health")
    again = PhasedInterval(60.0, "shop/health")
    other = PhasedInterval(60.0, "shop/port")

    assert one.phase == again.phase
    assert one.phase != other.phase
    assert 0 <= one.phase < 60


def test_many_items_spread_over_the_interval() -> None:
    phases = [PhasedInterval(60.0, f"svc/item-{n}").phase for n in range(6000)]
    per_second = [0] * 60
    for phase in phases:
        per_second[int(phase)] += 1

    assert min(per_second) > 50
    assert max(per_second) < 150


def test_after_a_run_off_the_grid_the_next_is_at_least_half_an_interval_later() -> None:
    trigger = PhasedInterval(60.0, "shop/health")
    on_grid = trigger.get_next_fire_time(None, T0)
    assert on_grid is not None
    startup_run = on_grid - timedelta(seconds=1)

    following = trigger.get_next_fire_time(startup_run, startup_run)

    assert following == on_grid + timedelta(seconds=60)
