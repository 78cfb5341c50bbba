"""Joins config, stored state and the clock into what every output shows: per item, section
and checklist, whether it passes, why not, and when it is due. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from exporter.dependencies import blocked_by
from exporter.lifecycle import attestation_holds, due_at, go_live_at, is_lapsed, is_live, score
from exporter.reasons import Reason
from exporter.results import (
    GO_LIVE_ITEM,
    MANUAL,
    PING,
    Attestation,
    ItemKey,
    ItemState,
    Severity,
    Waiver,
)
from exporter.times import exact

if TYPE_CHECKING:
    # Types only: the config models are built from the probe registry, which judging never needs.
    from exporter.config import Checklist, Config, Item, Section


_NOT_SET_UP = frozenset({Reason.NOT_ATTESTED.value, "unconfigured"})


@dataclass(frozen=True)
class ItemView:
    checklist: Checklist
    section: Section
    item: Item
    state: ItemState
    passing: bool
    reason: Reason
    due: float | None
    """Recurring items: when the item lapses without a new success (before grace)."""
    lapsed: bool
    blocked_by: tuple[ItemKey, ...] = ()
    """The item fails while these dependencies are not passing: it is blocked by them."""
    attestation_note: str = ""
    """A manual item not passing, in words: never attested, its definition changed since, or
    when it was last attested and when that lapsed."""
    waiver: Waiver | None = None
    """The approved waiver in effect: the item is left out of the score and of readiness."""

    @property
    def key(self) -> ItemKey:
        return ItemKey(self.checklist.name, self.item.id)

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_by)

    @property
    def message(self) -> str:
        """What went wrong, beside the reason: the probe's message, or the attestation's."""
        result = self.state.result
        return result.message if result is not None and result.message else self.attestation_note

    @property
    def unset_optional(self) -> bool:
        """An optional item nobody has set up yet (not attested, unconfigured): n/a?."""
        return self.item.optional and self.reason.value in _NOT_SET_UP

    @property
    def not_applicable(self) -> bool:
        """Left out of the score and of readiness: waived, or an optional item not set up."""
        return self.waiver is not None or self.unset_optional


@dataclass(frozen=True)
class SectionView:
    section: Section
    items: tuple[ItemView, ...]

    @property
    def score(self) -> float:
        return _score(self.items)


@dataclass(frozen=True)
class ChecklistView:
    checklist: Checklist
    sections: tuple[SectionView, ...]
    live: bool
    go_live: float | None = None
    """When the checklist went or goes live: `go_live:` or a `go-live` attestation."""

    @property
    def items(self) -> tuple[ItemView, ...]:
        return tuple(v for s in self.sections for v in s.items)

    @property
    def score(self) -> float:
        return _score(self.items)

    @property
    def ready(self) -> bool:
        return is_ready(self.items, self.score, self.checklist.ready_min_score)


def not_runnable(item: Item) -> str | None:
    """Why an item cannot be run on demand (POST /api/v1/runs), or None when it can."""
    if item.kind == MANUAL:
        return "manual: attested by a person, not run"
    if item.kind == PING:
        return "ping: its job reports in (POST /api/v1/pings, readiness-exporter run), not run"
    if item.unconfigured:
        return f"unconfigured: set {', '.join(item.unconfigured)}"
    return None


def _score(items: Iterable[ItemView]) -> float:
    """Passing over items, waived items left out of both."""
    counted = [v.passing for v in items if not v.not_applicable]
    return score(sum(counted), len(counted))


def blocks_ready(view: ItemView) -> bool:
    """The item keeps its checklist from being ready: it lapsed, or it fails and is not
    advisory (`info`); a waived item, or an optional one not set up, never does."""
    if view.not_applicable:
        return False
    return view.lapsed or (not view.passing and view.item.severity is not Severity.INFO)


def is_ready(items: Iterable[ItemView], score: float, min_score: float | None) -> bool:
    """The one readiness rule, read by the gauge, /health, /status, `check` and `report`:
    every critical and warning item passes, nothing has lapsed, and the score reaches
    `ready_min_score` when the checklist sets one. The clock enters through the views (whether
    an item lapsed is a matter of `now`, passed to `evaluate`)."""
    return not any(blocks_ready(v) for v in items) and (min_score is None or score >= min_score)


def evaluate(
    config: Config, states: Mapping[ItemKey, ItemState], now: float
) -> list[ChecklistView]:
    views = [_checklist(c, states, now) for c in config.checklists]
    if any(i.depends_on for c in config.checklists for s in c.sections for i in s.items):
        views = _with_blocking(views)
    return views


def can_be_blocked(view: ItemView) -> bool:
    """A failing item with dependencies; one waiting for its variables is unconfigured, not
    blocked."""
    return not view.passing and bool(view.item.depends_on) and not view.item.unconfigured


def _with_blocking(views: list[ChecklistView]) -> list[ChecklistView]:
    """The views with each failing item's `blocked_by` set, from every item's passing."""
    passing = {v.key: v.passing for c in views for v in c.items}

    def item(v: ItemView) -> ItemView:
        if not can_be_blocked(v):
            return v
        return replace(v, blocked_by=blocked_by(v.checklist.name, v.item.depends_on, passing.get))

    return [
        replace(c, sections=tuple(replace(s, items=tuple(map(item, s.items))) for s in c.sections))
        for c in views
    ]


def _checklist(
    checklist: Checklist, states: Mapping[ItemKey, ItemState], now: float
) -> ChecklistView:
    sections = tuple(
        SectionView(
            s,
            tuple(
                item_view(checklist, s, i, states.get(ItemKey(checklist.name, i.id)), now)
                for i in s.items
            ),
        )
        for s in checklist.sections
    )
    go_live = checklist_go_live(checklist, states)
    return ChecklistView(checklist, sections, is_live(now, go_live), go_live)


def checklist_go_live(checklist: Checklist, states: Mapping[ItemKey, ItemState]) -> float | None:
    """When the checklist went or goes live: its `go_live:`, or a `go-live` attestation."""
    declared = states.get(ItemKey(checklist.name, GO_LIVE_ITEM))
    attestation = declared.attestation if declared else None
    return go_live_at(checklist.go_live, attestation.at if attestation else None)


def _attestation_note(
    item: Item, attestation: Attestation | None, current: bool, due: float | None, lapsed: bool
) -> str:
    if attestation is None:
        return ""  # the reason, not_attested, says it all
    if not current and item.every is None:
        return (
            "definition changed since the attestation: attest again"
            f" (attested by {attestation.by} at {exact(attestation.at)})"
        )
    text = f"last attested by {attestation.by} at {exact(attestation.at)}"
    if due is not None:
        grace = item.grace.total_seconds()
        text += f"; lapsed at {exact(due + grace)}" if lapsed else f"; due at {exact(due)}"
    return text


def item_view(
    checklist: Checklist, section: Section, item: Item, state: ItemState | None, now: float
) -> ItemView:
    state = state or ItemState()
    result = state.result
    due = None
    lapsed = False
    attestation = state.attestation
    waiver = next((w for w in state.waivers if w.holds(now, item.fingerprint)), None)
    if item.every is not None:
        # A manual item's success is its attestation; a probed one's its last passing run.
        last = state.last_success
        if item.kind == MANUAL:
            last = attestation.at if attestation else None
        due = due_at(item.every, last, state.first_seen or now)
        lapsed = is_lapsed(now, due, item.grace)
    if item.unconfigured:
        # Not run, not passing, and not lapsing: it waits for its variables, not for a run.
        return ItemView(
            checklist, section, item, state, False, Reason.UNCONFIGURED, None, False, waiver=waiver
        )
    if item.kind == MANUAL:
        current = attestation is not None and item.attestation_matches(attestation.fingerprint)
        attested = attestation is not None and attestation_holds(now, due, current)
        reason = Reason.OK if attested else Reason.NOT_ATTESTED
        note = "" if attested else _attestation_note(item, attestation, current, due, lapsed)
        return ItemView(
            checklist,
            section,
            item,
            state,
            attested,
            reason,
            due,
            lapsed,
            attestation_note=note,
            waiver=waiver,
        )
    if result is None:
        return ItemView(
            checklist, section, item, state, False, Reason.NOT_RUN, due, lapsed, waiver=waiver
        )
    return ItemView(
        checklist, section, item, state, result.passing, result.reason, due, lapsed, waiver=waiver
    )
