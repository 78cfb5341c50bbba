"""/metrics at 10,000 items: each item's lines are rendered once per state and kept until its
state changes or the clock reaches one of its boundaries, so a scrape re-renders only what moved.

The output is byte for byte what `metrics.ReadinessCollector` renders through prometheus_client
(tests/unit/test_exposition.py holds the two side by side, in both encodings); the collector
stays the reference, this module is the fast path /metrics serves."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.evaluate import ChecklistView, ItemView, SectionView, checklist_go_live, item_view
from exporter.lifecycle import is_live
from exporter.metrics import MetricsSource, daemon_families
from exporter.results import ItemKey, ItemState

if TYPE_CHECKING:
    from exporter.config import Checklist, Config, Item, Section

ITEM_FAMILIES = (
    ("readiness_item_passing", "1 when the item's last run met every condition."),
    ("readiness_item_lapsed", "Recurring items: 1 when no success within every + grace."),
    ("readiness_item_last_run_timestamp_seconds", "When the item's probe last ran."),
    (
        "readiness_item_last_success_timestamp_seconds",
        "When the item last passed (or was last attested).",
    ),
    (
        "readiness_item_due_timestamp_seconds",
        "Recurring items: when the item lapses without a new success.",
    ),
    ("readiness_item_probe_duration_seconds", "How long the item's last probe took."),
    ("readiness_item_info", "Item metadata; always 1."),
    ("readiness_item_failure_reason", "1 for the current reason while the item is not passing."),
)


def _number(value: float) -> str:
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(doc: str, openmetrics: bool) -> str:
    doc = doc.replace("\\", r"\\").replace("\n", r"\n")
    return doc.replace('"', r"\"") if openmetrics else doc


@dataclass(frozen=True)
class _Place:
    """Where an item sits, with its constant label text prepared once per config."""

    key: ItemKey
    checklist: Checklist
    section: Section
    item: Item
    head: str
    """checklist="..",item=".." (labels are written sorted by name, as prometheus_client does)."""
    tail: str
    """section=".." """


@dataclass(frozen=True)
class _Rendered:
    state: ItemState | None
    until: float
    """Re-render once the clock reaches this: the item's next due or lapse boundary."""
    view: ItemView
    lines: tuple[bytes, ...]
    """One line per ITEM_FAMILIES entry, empty where the item has no sample."""


def _render(place: _Place, state: ItemState | None, now: float) -> _Rendered:
    v = item_view(place.checklist, place.section, place.item, state, now)
    head, tail, item = place.head, place.tail, place.item
    plain = f"{{{head},{tail}}} "
    severity = f'{{{head},{tail},severity="{item.severity.value}"}} '
    result = v.state.result
    ran = result is not None and item.kind != "manual"
    lines = (
        f"readiness_item_passing{severity}{_number(float(v.passing))}\n",
        f"readiness_item_lapsed{severity}{_number(float(v.lapsed))}\n" if v.due is not None else "",
        f"readiness_item_last_run_timestamp_seconds{plain}{_number(result.started_at)}\n"
        if ran and result is not None
        else "",
        f"readiness_item_last_success_timestamp_seconds{plain}{_number(v.state.last_success)}\n"
        if v.state.last_success is not None
        else "",
        f"readiness_item_due_timestamp_seconds{plain}{_number(v.due)}\n"
        if v.due is not None
        else "",
        f"readiness_item_probe_duration_seconds{plain}{_number(result.duration)}\n"
        if ran and result is not None
        else "",
        f'readiness_item_info{{{head},kind="{item.kind}",{tail},title="{_label(item.title)}"}}'
        " 1.0\n",
        f'readiness_item_failure_reason{{{head},reason="{v.reason.value}",{tail}}} 1.0\n'
        if not v.passing
        else "",
    )
    # What depends on the clock: a manual item's attestation ends at `due`, any recurring item
    # lapses once past due + grace. A boundary equal to now is kept, as `>` and `>=` flip there.
    boundaries = () if v.due is None else (v.due, v.due + item.grace.total_seconds())
    until = min((b for b in boundaries if b >= now), default=float("inf"))
    return _Rendered(state, until, v, tuple(line.encode() for line in lines))


@dataclass
class _Tally:
    """One checklist's summary, recomputed (through evaluate's views) only when one of its
    items was re-rendered."""

    checklist: Checklist
    spans: tuple[tuple[Section, int, int], ...]
    """Each section with the [start, end) range of its items in the layout."""
    sections: tuple[tuple[str, float], ...] = ()
    score: float = 1.0
    ready: bool = True
    dirty: bool = True

    def update(self, rendered: list[_Rendered]) -> None:
        views = ChecklistView(
            self.checklist,
            tuple(
                SectionView(section, tuple(r.view for r in rendered[start:end]))
                for section, start, end in self.spans
            ),
            live=False,  # not read here: liveness is a matter of the clock, taken each scrape
        )
        # A heading kept from the document holds no items: it has no score to show.
        self.sections = tuple((s.section.name, s.score) for s in views.sections if s.items)
        self.score, self.ready, self.dirty = views.score, views.ready, False


class _Summary(Collector):
    """The small families after the item ones, from the tallies the item cache keeps."""

    def __init__(self, source: MetricsSource) -> None:
        self.source = source
        self.tallies: list[_Tally] = []
        self.kinds: list[str] = []
        """Probed kinds in the config: each gets a zero readiness_probe_runs_total series."""
        self.now = 0.0
        self.states: Mapping[ItemKey, ItemState] = {}

    def collect(self) -> Iterator[Metric]:
        section_score = GaugeMetricFamily(
            "readiness_section_score_ratio",
            "Passing items over items.",
            labels=["checklist", "section"],
        )
        checklist_score = GaugeMetricFamily(
            "readiness_checklist_score_ratio", "Passing items over items.", labels=["checklist"]
        )
        ready = GaugeMetricFamily(
            "readiness_checklist_ready",
            "1 when every critical and warning item passes, none lapsed, score >= ready_min_score.",
            labels=["checklist"],
        )
        live = GaugeMetricFamily(
            "readiness_checklist_live", "1 after go-live.", labels=["checklist"]
        )
        for tally in self.tallies:
            name = tally.checklist.name
            for section, score in tally.sections:
                section_score.add_metric([name, section], score)
            checklist_score.add_metric([name], tally.score)
            ready.add_metric([name], float(tally.ready))
            go_live = checklist_go_live(tally.checklist, self.states)
            live.add_metric([name], float(is_live(self.now, go_live)))
        yield from (section_score, checklist_score, ready, live)

        yield from daemon_families(self.source, self.kinds)


class Exposition:
    """What /metrics serves: the readiness families (cached per item) followed by the small
    ones and the live process_*, python_info and any `extra` collectors, rendered each scrape."""

    def __init__(self, source: MetricsSource, *extra: Collector, process: bool = True) -> None:
        self.source = source
        self._summary = _Summary(source)
        self._rest = CollectorRegistry(auto_describe=False)
        self._rest.register(self._summary)
        if process:
            ProcessCollector(registry=self._rest)
            PlatformCollector(registry=self._rest)
        for collector in extra:
            self._rest.register(collector)
        self._config: Config | None = None
        self._places: list[_Place] = []
        self._owner: list[_Tally] = []
        """The tally of each place's checklist."""
        self._keys: list[ItemKey] = []
        self._rendered: list[_Rendered] = []
        self._seen: list[ItemState | None] = []
        """The state each item was last rendered from: compared by identity at each scrape."""
        self._columns: list[list[bytes]] = []
        """Per item family, the lines of every item in config order: joined at each scrape."""
        self._until = float("inf")
        """The earliest boundary of any item: until then, only new states are re-rendered."""

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition in the format `accept` asks for, and its content type."""
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        parts = self._item_families(openmetrics)
        parts.append(encoder(self._rest))
        # One copy of the ~6 MB a 10,000-item config renders to, not one per step.
        return b"".join(parts), content_type

    def _layout(self, config: Config, now: float) -> None:
        self._config = config
        self._places, self._owner, tallies = [], [], []
        for checklist in config.checklists:
            spans = []
            tally = _Tally(checklist, ())
            for section in checklist.sections:
                start = len(self._places)
                for item in section.items:
                    self._places.append(
                        _Place(
                            ItemKey(checklist.name, item.id),
                            checklist,
                            section,
                            item,
                            f'checklist="{_label(checklist.name)}",item="{_label(item.id)}"',
                            f'section="{_label(section.name)}"',
                        )
                    )
                    self._owner.append(tally)
                spans.append((section, start, len(self._places)))
            tally.spans = tuple(spans)
            tallies.append(tally)
        self._summary.tallies = tallies
        self._summary.kinds = sorted({p.item.kind for p in self._places} - {"manual"})
        self._keys = [p.key for p in self._places]
        states = self.source.states()
        self._rendered = [_render(p, states.get(p.key), now) for p in self._places]
        self._seen = [r.state for r in self._rendered]
        self._columns = [[r.lines[i] for r in self._rendered] for i in range(len(ITEM_FAMILIES))]
        self._until = min((r.until for r in self._rendered), default=float("inf"))

    def _item_families(self, openmetrics: bool) -> list[bytes]:
        config = self.source.config
        now = self.source.clock.now()
        if config is not self._config:
            self._layout(config, now)
        states = self.source.states()
        rendered, seen = self._rendered, self._seen
        # The scan that runs at every scrape, kept to C loops: which states were replaced, and
        # (rarely) whose boundary the clock reached.
        fresh = map(states.get, self._keys)
        changed = [
            i for i, (new, old) in enumerate(zip(fresh, seen, strict=True)) if new is not old
        ]
        if now >= self._until:
            changed += [i for i, r in enumerate(rendered) if now >= r.until]
        for index in changed:
            place = self._places[index]
            done = rendered[index] = _render(place, states.get(place.key), now)
            seen[index] = done.state
            for column, line in zip(self._columns, done.lines, strict=True):
                column[index] = line
            self._owner[index].dirty = True
        if changed:
            self._until = min(r.until for r in rendered)
        for tally in self._summary.tallies:
            if tally.dirty:
                tally.update(rendered)
        self._summary.now, self._summary.states = now, states
        parts: list[bytes] = []
        for (name, doc), column in zip(ITEM_FAMILIES, self._columns, strict=True):
            parts.append(f"# HELP {name} {_help(doc, openmetrics)}\n# TYPE {name} gauge\n".encode())
            parts.extend(column)
        return parts
