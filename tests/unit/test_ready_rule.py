"""The one readiness rule at fixed times: critical and warning items must pass, info items are
advisory, a lapse blocks, `ready_min_score` is a floor; and every view reads that one rule."""

from __future__ import annotations

import pytest

from exporter.evaluate import ChecklistView, evaluate
from exporter.loader import ConfigError, parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.render import markdown, table
from exporter.results import ItemKey, ItemState, Result
from exporter.web.status import status_document

NOW = 1_800_000_000.0
DAY = 86400.0


def config(*severities: str, min_score: str = "", every: str = "") -> str:
    items = "".join(
        f"""
          - id: item-{n}
            title: Item {n}
            severity: {severity}
            file: {{path: /srv/{n}}}{every}"""
        for n, severity in enumerate(severities)
    )
    return f"""
checklists:
  - name: app{min_score}
    sections:
      - name: ops
        items:{items}
"""


def state(passing: bool, last_success: float | None = NOW - 60) -> ItemState:
    reason = Reason.OK if passing else Reason.CONDITION
    return ItemState(Result(passing, reason, NOW - 60, 0.001), last_success, NOW - 2 * DAY)


def view(text: str, *passing: bool) -> ChecklistView:
    states = {
        ItemKey("app", f"item-{n}"): state(p, NOW - 60 if p else None)
        for n, p in enumerate(passing)
    }
    (checklist,) = evaluate(parse_config(text).config, states, NOW)
    return checklist


def test_a_checklist_of_warning_items_is_not_ready_while_one_fails() -> None:
    text = config("warning", "warning")
    assert view(text, True, True).ready
    assert not view(text, True, False).ready


def test_a_failing_critical_item_blocks_readiness() -> None:
    text = config("critical", "warning")
    assert not view(text, False, True).ready


@pytest.mark.parametrize("passing", [(True, False, False), (True, True, False)])
def test_info_items_never_block(passing: tuple[bool, ...]) -> None:
    checklist = view(config("critical", "info", "info"), *passing)
    assert checklist.ready
    assert checklist.score < 1


def test_a_lapse_blocks_even_for_an_info_item() -> None:
    every = "\n            every: 1d\n            grace: 1h"
    text = config("critical", "info", every=every)
    # The info item fails; it last succeeded within every + grace, then beyond it.
    fresh = {ItemKey("app", "item-1"): state(False, NOW - DAY)}
    stale = {ItemKey("app", "item-1"): state(False, NOW - DAY - 2 * 3600)}
    passing = {ItemKey("app", "item-0"): state(True)}
    parsed = parse_config(text).config
    (within,) = evaluate(parsed, passing | fresh, NOW)
    (beyond,) = evaluate(parsed, passing | stale, NOW)
    assert not within.items[1].lapsed and within.ready
    assert beyond.items[1].lapsed and not beyond.ready


@pytest.mark.parametrize(
    ("floor", "ready"), [("0.5", True), ("0.51", False), ("0", True), ("1", False)]
)
def test_ready_min_score_is_a_floor(floor: str, ready: bool) -> None:
    # Half the items pass, and the one failing is advisory: only the floor can block.
    checklist = view(
        config("critical", "info", min_score=f"\n    ready_min_score: {floor}"), True, False
    )
    assert checklist.score == 0.5
    assert checklist.ready is ready


# true would read as 1.0: a yes or no is no score.
@pytest.mark.parametrize("floor", ["1.5", "-0.1", "high", "true", ".nan", ".inf"])
def test_ready_min_score_out_of_range_is_a_config_error_with_its_line(floor: str) -> None:
    text = config("critical", min_score=f"\n    ready_min_score: {floor}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    (issue,) = caught.value.issues
    assert str(issue).startswith("c.yaml:4: ") and "ready_min_score" in str(issue)


def test_status_table_and_report_say_what_the_rule_says() -> None:
    # An only-warning checklist with one failure: the old rule (critical items only) said ready.
    checklist = view(config("warning", "info"), False, True)
    assert not checklist.ready
    assert status_document([checklist], NOW, Redactor())["checklists"][0]["ready"] is False
    assert "app: 1/2 passing (score 0.50), NOT READY" in table([checklist], redactor=Redactor())
    assert "1 of 2 items passing, not ready" in markdown([checklist], NOW, redactor=Redactor())
