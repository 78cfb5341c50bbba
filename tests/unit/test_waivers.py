"""Waivers judged with the clock passed in: in effect from approval until expiry (not at it),
for the item's definition only; a waived item leaves the score and the ready rule; a request's
expiry is bounded by exporter.max_waiver."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from exporter.attestations import Invalid, NotFound
from exporter.evaluate import evaluate
from exporter.loader import parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.results import ItemKey, ItemState, Result, Waiver
from exporter.state.sqlite import SqliteStore
from exporter.waivers import decide, expiry
from exporter.web.status import describe_waiver as describe

T0 = 1_800_000_000.0
DAY = 86400.0
CONFIG = """
exporter:
  max_waiver: 30d
checklists:
  - name: app
    sections:
      - name: infra
        items:
          - id: up
            title: Up
            tcp: {host: 127.0.0.1, port: 1}
          - id: k8s
            title: Kubernetes probes
            severity: critical
            tcp: {host: 127.0.0.1, port: 2}
"""


def views(waivers: tuple[Waiver, ...], now: float) -> tuple[float, bool, Waiver | None]:
    config = parse_config(CONFIG).config
    ok = Result(True, Reason.OK, T0, 0.01)
    failing = Result(False, Reason.CONNECT, T0, 0.01)
    states = {
        ItemKey("app", "up"): ItemState(ok, T0, T0),
        ItemKey("app", "k8s"): ItemState(failing, None, T0, waivers=waivers),
    }
    (checklist,) = evaluate(config, states, now)
    return checklist.score, checklist.ready, checklist.items[1].waiver


def fingerprint() -> str:
    config = parse_config(CONFIG).config
    return config.checklists[0].sections[0].items[1].fingerprint


def waiver(**changes: object) -> Waiver:
    asked = Waiver("app", "k8s", "VMs only", "alice", T0, T0 + DAY, fingerprint(), token="lead")
    return replace(asked, **changes)  # type: ignore[arg-type]


def test_an_approved_waiver_holds_until_it_expires() -> None:
    approved = waiver(approved_by="ops", approved_at=T0 + 1)
    assert views((approved,), T0 + 10) == (1.0, True, approved)
    assert views((approved,), T0 + DAY - 0.001)[2] == approved
    # At expiry the item counts again.
    assert views((approved,), T0 + DAY) == (0.5, False, None)


def test_a_requested_revoked_or_outdated_waiver_does_not_hold() -> None:
    assert views((waiver(),), T0 + 10) == (0.5, False, None)
    revoked = waiver(approved_by="ops", approved_at=T0, revoked_by="ops", revoked_at=T0 + 5)
    assert views((revoked,), T0 + 10) == (0.5, False, None)
    outdated = waiver(approved_by="ops", approved_at=T0, fingerprint="an older definition")
    assert views((outdated,), T0 + 10) == (0.5, False, None)


def test_a_waived_item_reads_as_not_applicable() -> None:
    approved = waiver(approved_by="ops", approved_at=T0)
    assert (
        describe(approved, Redactor())
        == "n/a: VMs only (alice, approved by ops, until 2027-01-16 08:00 UTC)"
    )
    # `check` and `report` print it: who asked is masked as the reason is (an old record).
    pasted = waiver(by="alice hunter2-secret", approved_by="ops", approved_at=T0)
    assert describe(pasted, Redactor(["hunter2-secret"])).startswith(
        "n/a: VMs only (alice <redacted>, approved by ops,"
    )


def test_expiry_is_in_the_future_and_within_max_waiver() -> None:
    config = parse_config(CONFIG).config
    assert expiry("7d", T0, config) == T0 + 7 * DAY
    assert expiry("2027-01-20", T0, config) == 1_800_403_200.0
    for text in ("31d", "2001-01-01", "soon", "0s"):
        with pytest.raises(Invalid) as caught:
            expiry(text, T0, config)
        assert caught.value.field == "expires"


def test_an_expiry_in_the_past_or_too_far_names_the_time_given() -> None:
    # `expires: 1970-01-01` answered "None is not in the future": Unix second 0 read as no time.
    config = parse_config(CONFIG).config
    for text, message in (
        ("1970-01-01", "expires 1970-01-01T00:00:00Z is not in the future"),
        ("0", "expires 1970-01-01T00:00:00Z is not in the future"),
        ("2001-01-01", "expires 2001-01-01T00:00:00Z is not in the future"),
        ("9999-12-31", "expires 9999-12-31T00:00:00Z is more than exporter.max_waiver (30 days)"
                       " ahead"),
        # Beyond what a date can hold: named as given, not an OverflowError.
        ("1e300", "expires '1e300' is more than exporter.max_waiver (30 days) ahead"),
        ("-1e300", "expires '-1e300' is not in the future"),
    ):  # fmt: skip
        with pytest.raises(Invalid) as caught:
            expiry(text, T0, config)
        assert (caught.value.field, caught.value.message) == ("expires", message)


def test_check_and_report_show_a_waived_item_as_not_applicable() -> None:
    from exporter import render

    config = parse_config(CONFIG).config
    approved = waiver(approved_by="ops", approved_at=T0)
    states = {
        ItemKey("app", "up"): ItemState(Result(True, Reason.OK, T0, 0.01), T0, T0),
        ItemKey("app", "k8s"): ItemState(
            Result(False, Reason.CONNECT, T0, 0.01), None, T0, waivers=(approved,)
        ),
    }
    views = evaluate(config, states, T0 + 10)
    line = next(x for x in render.table(views, redactor=Redactor()).splitlines() if " k8s " in x)
    assert line.startswith("N/A ") and "n/a: VMs only (alice, approved by ops, until" in line
    assert "app: 1/1 passing, 1 n/a (score 1.00), READY" in render.table(views, redactor=Redactor())
    assert f"- [ ] Kubernetes probes — {describe(approved, Redactor())}" in render.markdown(
        views, redactor=Redactor()
    )


@pytest.mark.parametrize("id_", [0, 2**63, 10**30])
async def test_a_waiver_id_no_store_can_hold_is_not_found(tmp_path: Path, id_: int) -> None:
    # POST /api/v1/waivers/99999999999999999999999/approve answered 500 (an OverflowError
    # from SQLite); an id beyond 64 bits names no waiver.
    store = SqliteStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        with pytest.raises(NotFound, match=f"no waiver {id_}"):
            await decide(store, id_, "approve", "lead", T0)
    finally:
        await store.close()
