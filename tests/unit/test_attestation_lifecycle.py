"""Manual and recurring items over days of FixedClock time, against a real SQLite store:
attested, due, lapsed, attested again; a probed item lapsing while its target is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exporter.attestations import AttestationRequest, Invalid, NotFound, attest
from exporter.clock import FixedClock
from exporter.daemon import Daemon
from exporter.evaluate import ChecklistView, ItemView, evaluate
from exporter.loader import ConfigError, parse_config
from exporter.reasons import Reason
from tests.support.servers import HttpTarget

DAY = 86400.0
HOUR = 3600.0


def config_text(
    tmp_path: Path,
    target_url: str,
    signoff_severity: str = "warning",
    signoff_title: str = "Security sign-off",
) -> str:
    return f"""
exporter:
  state: "sqlite:///{tmp_path}/state.db"
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: error-log-review
            title: Review error logs
            manual: {{}}
            every: 1d
            grace: 2h
          - id: signoff
            title: {signoff_title}
            severity: {signoff_severity}
            manual: {{}}
          - id: backups
            title: Backups answer
            every: 1d
            grace: 1h
            http: {{url: "{target_url}/health"}}
"""


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


async def started(tmp_path: Path, text: str, clock: FixedClock) -> Daemon:
    daemon = Daemon(parse_config(text, str(tmp_path / "readiness.yaml")), clock=clock)
    await daemon.start(schedule=False)
    return daemon


@pytest.fixture
async def daemon(
    tmp_path: Path, http_target: HttpTarget, clock: FixedClock
) -> AsyncIterator[Daemon]:
    running = await started(tmp_path, config_text(tmp_path, http_target.url), clock)
    yield running
    await running.stop()


def checklist(daemon: Daemon) -> ChecklistView:
    [view] = evaluate(daemon.config, daemon.states(), daemon.clock.now())
    return view


def view(daemon: Daemon, item: str) -> ItemView:
    return next(v for v in checklist(daemon).items if v.item.id == item)


async def attest_as(daemon: Daemon, item: str, by: str = "alice") -> None:
    request = AttestationRequest(checklist="app", item=item, by=by, note="checked")
    await attest(daemon.store, daemon.config, request, "oncall", daemon.clock.now())


async def test_a_daily_manual_item_passes_lapses_and_passes_again(
    daemon: Daemon, clock: FixedClock
) -> None:
    item = view(daemon, "error-log-review")
    assert (item.passing, item.reason, item.lapsed) == (False, Reason.NOT_ATTESTED, False)

    await attest_as(daemon, "error-log-review")
    attested_at = clock.now()
    item = view(daemon, "error-log-review")
    assert (item.passing, item.reason, item.due) == (True, Reason.OK, attested_at + DAY)

    clock.advance(DAY - 1)
    assert view(daemon, "error-log-review").passing

    # Due: no longer passing, but within grace it has not lapsed yet.
    clock.advance(1)
    item = view(daemon, "error-log-review")
    assert (item.passing, item.reason, item.lapsed) == (False, Reason.NOT_ATTESTED, False)
    clock.advance(2 * HOUR)
    assert not view(daemon, "error-log-review").lapsed

    clock.advance(1)
    assert view(daemon, "error-log-review").lapsed

    await attest_as(daemon, "error-log-review", by="bob")
    item = view(daemon, "error-log-review")
    assert (item.passing, item.lapsed, item.due) == (True, False, clock.now() + DAY)
    assert item.state.attestation is not None and item.state.attestation.by == "bob"
    assert item.state.last_success == clock.now()


async def test_an_item_without_every_holds_until_its_definition_changes(
    tmp_path: Path, http_target: HttpTarget, daemon: Daemon, clock: FixedClock
) -> None:
    await attest_as(daemon, "signoff")
    clock.advance(400 * DAY)
    item = view(daemon, "signoff")
    assert item.passing and item.due is None and not item.lapsed

    # Restarted with the same definition, or a raised severity: still attested (the severity is
    # not what was attested). With another title: no longer, and it says why.
    again = await started(tmp_path, config_text(tmp_path, http_target.url), clock)
    assert view(again, "signoff").passing
    await again.stop()
    raised = await started(tmp_path, config_text(tmp_path, http_target.url, "critical"), clock)
    assert view(raised, "signoff").passing
    await raised.stop()
    text = config_text(tmp_path, http_target.url, signoff_title="Security and privacy sign-off")
    changed = await started(tmp_path, text, clock)
    try:
        item = view(changed, "signoff")
        assert (item.passing, item.reason) == (False, Reason.NOT_ATTESTED)
        assert item.state.attestation is not None  # the history is kept, it just no longer holds
        assert item.message.startswith("definition changed since the attestation: attest again")
        assert item.message.endswith("(attested by alice at 2023-11-14 22:13:20 UTC)")
    finally:
        await changed.stop()


async def test_a_probed_recurring_item_lapses_after_every_plus_grace_of_failures(
    daemon: Daemon, clock: FixedClock, http_target: HttpTarget
) -> None:
    key = view(daemon, "backups").key
    await daemon.run_item(key)
    succeeded_at = clock.now()
    item = view(daemon, "backups")
    assert item.passing and item.due == succeeded_at + DAY

    http_target.stop()
    clock.advance(DAY + HOUR)
    await daemon.run_item(key)
    item = view(daemon, "backups")
    assert (item.passing, item.reason, item.lapsed) == (False, Reason.CONNECT, False)
    assert item.state.last_success == succeeded_at
    assert not checklist(daemon).ready  # a failing warning item blocks readiness (lapsed or not)

    clock.advance(1)
    await daemon.run_item(key)
    assert view(daemon, "backups").lapsed
    assert not checklist(daemon).ready

    http_target.start()
    await daemon.run_item(key)
    item = view(daemon, "backups")
    assert item.passing and not item.lapsed and item.due == clock.now() + DAY


async def test_go_live_declared_at_runtime(daemon: Daemon, clock: FixedClock) -> None:
    assert not checklist(daemon).live
    await attest_as(daemon, "go-live")
    view_ = checklist(daemon)
    assert view_.live and view_.go_live == clock.now()


async def test_attesting_unknown_or_probed_items_is_refused(daemon: Daemon) -> None:
    with pytest.raises(NotFound, match="no checklist named 'nope'"):
        await attest(
            daemon.store,
            daemon.config,
            AttestationRequest(checklist="nope", item="signoff", by="a"),
            None,
            0,
        )
    with pytest.raises(NotFound, match="has no item 'missing'"):
        await attest_as(daemon, "missing")
    with pytest.raises(Invalid, match="probed \\(http\\), not manual") as caught:
        await attest_as(daemon, "backups")
    assert caught.value.field == "item"


def test_go_live_is_a_reserved_item_id(tmp_path: Path) -> None:
    text = config_text(tmp_path, "http://127.0.0.1:1").replace("id: signoff", "id: go-live")
    with pytest.raises(ConfigError, match=r"readiness.yaml:\d+: item go-live: .*reserved"):
        parse_config(text, str(tmp_path / "readiness.yaml"))


def _signoff(text: str) -> tuple[str, str, str]:
    """The signoff item's fingerprints (attested, whole definition) and its title."""
    loaded = parse_config(text, "readiness.yaml")
    item = next(
        i for s in loaded.config.checklists[0].sections for i in s.items if i.id == "signoff"
    )
    return item.attested_fingerprint, item.fingerprint, item.title


def test_what_a_manual_attestation_covers_and_older_fingerprints_still_holding(
    tmp_path: Path,
) -> None:
    base = _signoff(config_text(tmp_path, "http://127.0.0.1:1"))
    raised = _signoff(config_text(tmp_path, "http://127.0.0.1:1", "critical"))
    retitled = _signoff(config_text(tmp_path, "http://127.0.0.1:1", signoff_title="Sign-off v2"))
    assert raised[0] == base[0] and retitled[0] != base[0]  # title yes, severity no
    assert raised[1] != base[1]  # the whole definition (the scheduler's) does see the severity

    loaded = parse_config(config_text(tmp_path, "http://127.0.0.1:1"), "readiness.yaml")
    item = next(
        i for s in loaded.config.checklists[0].sections for i in s.items if i.id == "signoff"
    )
    # An attestation recorded before (by the whole definition) holds while that is unchanged.
    assert item.attestation_matches(base[1]) and item.attestation_matches(base[0])
    assert not item.attestation_matches(raised[1]) and not item.attestation_matches(retitled[0])
