"""/metrics at 10,000 items: each item's lines are rendered once per state and kept until its
state changes or the clock reaches one of its boundaries, so a scrape re-renders only what moved;
a gzip scrape compresses those lines once per change, not once per scrape.

Names, HELP and labels come from `metrics`' table. The output is byte for byte what the
reference collector (tests/support/collector.py) renders through prometheus_client from the same
table; tests/unit/test_exposition.py holds the two side by side, in both encodings."""

from __future__ import annotations

import math
import platform
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import is_not
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from exporter import __version__, lifecycle
from exporter.clock import Clock
from exporter.dependencies import blocked_by, resolve
from exporter.evaluate import (
    ItemView,
    blocks_ready,
    can_be_blocked,
    checklist_go_live,
    item_view,
)
from exporter.lifecycle import is_live
from exporter.metrics import (
    BUILD_INFO,
    CHECKLIST_LIVE,
    CHECKLIST_READY,
    CHECKLIST_SCORE,
    ITEM_BLOCKED,
    ITEM_BLOCKING,
    ITEM_DUE,
    ITEM_DURATION,
    ITEM_FAILURE_REASON,
    ITEM_FAMILIES,
    ITEM_INFO,
    ITEM_LAPSED,
    ITEM_LAST_RUN,
    ITEM_LAST_SUCCESS,
    ITEM_PASSING,
    ITEM_WAIVED,
    ITEM_WAIVER_EXPIRY,
    PROBE_RUNS,
    RELOAD_SUCCESSFUL,
    RELOAD_TIMESTAMP,
    SECTION_SCORE,
    STATE_WRITE_ERRORS,
    WAIVER_WARNING,
    Family,
)
from exporter.redact import Redactor
from exporter.results import MANUAL, PASSIVE_KINDS, RUN_RESULTS, ItemKey, ItemState

if TYPE_CHECKING:
    from exporter.config import Checklist, Config, Item, Section

GZIP_LEVEL = 1
"""The exposition repeats itself line after line: level 1 shrinks 10,000 items' 4.8 MB to 0.2 MB
in a fifth of the time level 6 takes, for 25% more bytes."""


class MetricsSource(Protocol):
    """What /metrics reads: the daemon, or a one-shot `check` run."""

    clock: Clock
    redactor: Redactor
    """The config's secrets: a title written with `${VAR}` shows in a label masked."""

    @property
    def config(self) -> Config: ...

    def states(self) -> Mapping[ItemKey, ItemState]: ...

    @property
    def runs(self) -> Counter[tuple[str, str]]: ...

    @property
    def reload_successful(self) -> bool: ...

    @property
    def reload_timestamp(self) -> float: ...

    @property
    def state_write_errors(self) -> tuple[str, int]: ...


def sample_value(value: float) -> str:
    """A sample value as Prometheus' own (Go) formatting writes it, so the text matches
    prometheus_client's byte for byte: `1.7e+09`, `+Inf`, `NaN`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python does
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def label_value(text: str) -> str:
    """A label value escaped for both text formats: backslash, newline, double quote."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def help_text(doc: str, openmetrics: bool) -> str:
    """HELP escaped: the Prometheus text format leaves double quotes alone, OpenMetrics not."""
    doc = doc.replace("\\", r"\\").replace("\n", r"\n")
    return doc.replace('"', r"\"") if openmetrics else doc


def wants_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip (`gzip;q=0` refuses it)."""
    for coding in accept_encoding.split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip"):
            continue
        quality = params.strip().lower().removeprefix("q=").strip()
        try:
            return not params.strip() or float(quality) > 0
        except ValueError:
            return False
    return False


def _template(family: Family) -> str:
    """`name{a="{a}",b="{b}"} ` for str.format_map, labels sorted as prometheus_client does."""
    labels = ",".join(f'{label}="{{{label}}}"' for label in sorted(family.labels))
    return f"{family.name}{{{{{labels}}}}} "


TEMPLATES = tuple(_template(family) for family in ITEM_FAMILIES)


def daemon_families(source: MetricsSource, kinds: Iterable[str]) -> Iterator[Metric]:
    """The exporter's own families: probe runs (a zero series for every probed kind), config
    reload state, failed state writes, build info."""
    runs = PROBE_RUNS.counter()
    counted = source.runs
    for kind in sorted(set(kinds) | {k for k, _ in counted}):
        for result_label in RUN_RESULTS:
            runs.add_metric([kind, result_label], counted[(kind, result_label)])
    reload_ok = RELOAD_SUCCESSFUL.gauge()
    reload_ok.add_metric([], float(source.reload_successful))
    reload_ts = RELOAD_TIMESTAMP.gauge()
    reload_ts.add_metric([], source.reload_timestamp)
    write_errors = STATE_WRITE_ERRORS.counter()
    store, failed = source.state_write_errors
    write_errors.add_metric([store], failed)
    build = BUILD_INFO.gauge()
    build.add_metric([__version__, platform.python_version()], 1.0)
    warning = WAIVER_WARNING.gauge()
    warning.add_metric([], source.config.exporter.waiver_warning.total_seconds())
    yield from (runs, reload_ok, reload_ts, write_errors, build, warning)


PLACE_LABELS = ("checklist", "section", "item", "severity", "kind", "title")
"""The labels an item's series share whatever its state (`reason` is added per render)."""


@dataclass(frozen=True, slots=True)
class _Place:
    """Where an item sits, with its constant label values escaped once per config."""

    key: ItemKey
    checklist: Checklist
    section: Section
    item: Item
    kind: str
    """`item.kind`, which searches the probe fields at every read."""
    labels: tuple[str, ...]
    """The values of PLACE_LABELS, escaped."""


PASSING, COUNTED, BLOCKS = 1, 2, 4
"""What the summary families need of an item's view, as bits: it passes; it counts in its
section's and checklist's score (not waived, not an optional item nobody set up); it keeps
its checklist from being ready (evaluate.blocks_ready)."""


@dataclass(frozen=True, slots=True)
class _Rendered:
    view: ItemView
    until: float
    """Re-render once the clock reaches this: the item's next due or lapse boundary."""
    flags: int
    """PASSING | COUNTED | BLOCKS."""
    lines: tuple[bytes, ...]
    """One per ITEM_FAMILIES entry (empty where the item has no sample); kept only inside
    their family's block (_Blocks)."""


def _render(place: _Place, state: ItemState | None, now: float) -> _Rendered:
    v = item_view(place.checklist, place.section, place.item, state, now)
    result = v.state.result
    ran = result is not None and place.kind != MANUAL
    samples: dict[Family, float] = {ITEM_PASSING: float(v.passing), ITEM_INFO: 1.0}
    if v.due is not None:
        samples[ITEM_LAPSED] = float(v.lapsed)
        samples[ITEM_DUE] = v.due
    if ran and result is not None:
        samples[ITEM_LAST_RUN] = result.started_at
        samples[ITEM_DURATION] = result.duration
    if v.state.last_success is not None:
        samples[ITEM_LAST_SUCCESS] = v.state.last_success
    if not v.passing:
        samples[ITEM_FAILURE_REASON] = 1.0
    if v.state.waivers:
        samples[ITEM_WAIVED] = float(v.waiver is not None)
    if v.waiver is not None:
        samples[ITEM_WAIVER_EXPIRY] = v.waiver.expires
    labels = dict(zip(PLACE_LABELS, place.labels, strict=True), reason=v.reason.value)
    lines = tuple(
        f"{template.format_map(labels)}{sample_value(samples[family])}\n".encode()
        if family in samples
        else b""
        for family, template in zip(ITEM_FAMILIES, TEMPLATES, strict=True)
    )
    # What depends on the clock: a manual item's attestation ends at `due`, any recurring item
    # lapses once past due + grace. A boundary equal to now is kept, as `>` and `>=` flip there.
    boundaries: tuple[float, ...] = ()
    if v.due is not None:
        boundaries = (v.due, v.due + place.item.grace.total_seconds())
    boundaries += tuple(w.expires for w in v.state.waivers)
    until = min((b for b in boundaries if b >= now), default=float("inf"))
    counted = not v.not_applicable
    flags = PASSING * v.passing | COUNTED * counted | BLOCKS * blocks_ready(v)
    return _Rendered(v, until, flags, lines)


class _Blocks:
    """One item family's lines, in blocks of BLOCK items joined into one bytes each, with the
    end offset of every item's line in its block: a changed item's line is spliced into its
    block, the text is held once (not per item and again joined), and a scrape joins ~80
    blocks per family rather than 10,000 lines."""

    __slots__ = ("blocks", "ends")

    def __init__(self) -> None:
        self.blocks: list[bytes] = []
        self.ends: list[array[int]] = []

    def append(self, lines: list[bytes]) -> None:
        """The next block: the lines of the next BLOCK items (fewer for the last)."""
        self.blocks.append(b"".join(lines))
        self.ends.append(array("q", accumulate(map(len, lines))))

    def replace(self, index: int, line: bytes) -> None:
        b, j = divmod(index, BLOCK)
        ends, block = self.ends[b], self.blocks[b]
        start, end = ends[j - 1] if j else 0, ends[j]
        if block[start:end] == line:
            return
        self.blocks[b] = b"".join((block[:start], line, block[end:]))
        delta = len(line) - (end - start)
        if delta:
            for k in range(j, len(ends)):
                ends[k] += delta


@dataclass(frozen=True)
class _Compressed:
    version: int
    head: bytes
    """The gzip stream so far: header and the item families' compressed lines."""
    compressor: zlib._Compress
    """In the state it reached after the item families (holding what it has not yet written)."""


@dataclass
class _Tally:
    """One checklist's summary as evaluate computes it (scores over the counted items, ready
    when none blocks and the score reaches ready_min_score), from counts each re-rendered
    item moves by its flags, not from a walk over the checklist's items."""

    checklist: Checklist
    spans: tuple[tuple[Section, int, int], ...]
    """Each section with the [start, end) range of its items in the layout."""
    counted: list[int]
    """Per section: items that count in the score."""
    passed: list[int]
    """Per section: items that count and pass."""
    blockers: int = 0
    sections: tuple[tuple[str, float], ...] = ()
    score: float = 1.0
    ready: bool = True
    dirty: bool = True

    def count(self, section: int, flags: int, sign: int) -> None:
        """Adds (sign 1) or takes back (-1) an item of `section` with these flags."""
        if flags & COUNTED:
            self.counted[section] += sign
            self.passed[section] += sign * (flags & PASSING)
        self.blockers += sign * (flags & BLOCKS != 0)
        self.dirty = True

    def update(self) -> None:
        # A heading kept from the document holds no items: it has no score to show.
        self.sections = tuple(
            (section.name, lifecycle.score(passed, counted))
            for (section, start, end), counted, passed in zip(
                self.spans, self.counted, self.passed, strict=True
            )
            if end > start
        )
        self.score = lifecycle.score(sum(self.passed), sum(self.counted))
        least = self.checklist.ready_min_score
        self.ready = not self.blockers and (least is None or self.score >= least)
        self.dirty = False


class _Summary(Collector):
    """The small families after the item ones, from the tallies the item cache keeps."""

    def __init__(self, source: MetricsSource) -> None:
        self.source = source
        self.tallies: list[_Tally] = []
        self.kinds: list[str] = []
        """Probed kinds in the config: each gets a zero readiness_probe_runs_total series."""
        self.now = 0.0
        self.states: Mapping[ItemKey, ItemState] = {}
        self.blocked: list[tuple[list[str], float]] = []
        """readiness_item_blocked of each item with depends_on: labels and value."""
        self.blocking: list[tuple[list[str], float]] = []
        """readiness_item_blocking of each item named in a depends_on: labels and value."""

    def collect(self) -> Iterator[Metric]:
        section_score, checklist_score, ready, live = (
            SECTION_SCORE.gauge(),
            CHECKLIST_SCORE.gauge(),
            CHECKLIST_READY.gauge(),
            CHECKLIST_LIVE.gauge(),
        )
        for tally in self.tallies:
            name = tally.checklist.name
            for section, score in tally.sections:
                section_score.add_metric([name, section], score)
            checklist_score.add_metric([name], tally.score)
            ready.add_metric([name], float(tally.ready))
            go_live = checklist_go_live(tally.checklist, self.states)
            live.add_metric([name], float(is_live(self.now, go_live)))
        blocked, blocking = ITEM_BLOCKED.gauge(), ITEM_BLOCKING.gauge()
        for labels, value in self.blocked:
            blocked.add_metric(labels, value)
        for labels, value in self.blocking:
            blocking.add_metric(labels, value)
        yield from (section_score, checklist_score, ready, live, blocked, blocking)

        yield from daemon_families(self.source, self.kinds)


BLOCK = 128
"""Items per joined block of a family's lines: a scrape joins ~80 blocks per family instead of
10,000 lines, and a changed item re-joins only its block."""


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
        self._section = array("i")
        """The place's section, as an index into its tally's spans."""
        self._keys: list[ItemKey] = []
        self._index: dict[ItemKey, int] = {}
        self._dependents: dict[int, ItemView] = {}
        """Places of the items with depends_on (each gets a readiness_item_blocked series),
        with their views as last rendered."""
        self._depended: list[int] = []
        """Places of the items some depends_on names: each gets a readiness_item_blocking."""
        self._seen: list[ItemState | None] = []
        """The state each item was last rendered from: compared by identity at each scrape."""
        self._untils = array("d")
        """Per place, _Rendered.until."""
        self._flags = bytearray()
        """Per place, _Rendered.flags."""
        self._mark: int | None = None
        """Where the source's change feed was last read (see _changed)."""
        self._families: list[_Blocks] = []
        """Per item family, the lines of every item in config order."""
        self._until = float("inf")
        """The earliest boundary of any item: until then, only new states are re-rendered."""
        self._version = 0
        """Counts the changes of the item families' lines: a compressed copy is good until then."""
        self._compressed: dict[bool, _Compressed] = {}
        """The compressed item families, per encoding (OpenMetrics or not)."""

    def render(self, accept: str, gzip: bool = False) -> tuple[bytes, str]:
        """The exposition in the format `accept` asks for (gzip-compressed if `gzip`), and its
        content type."""
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        parts = self._item_families(openmetrics)
        rest = encoder(self._rest)
        if gzip:
            return self._compress(openmetrics, parts, rest), content_type
        parts.append(rest)
        # One copy of the ~6 MB a 10,000-item config renders to, not one per step.
        return b"".join(parts), content_type

    def _compress(self, openmetrics: bool, items: list[bytes], rest: bytes) -> bytes:
        """One gzip stream of the item families and `rest`. The item families are compressed
        once per change and the compressor kept in the state it reached after them: a scrape
        compresses only `rest`, into a copy of that compressor."""
        cached = self._compressed.get(openmetrics)
        if cached is None or cached.version != self._version:
            compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            head = compressor.compress(b"".join(items))
            cached = self._compressed[openmetrics] = _Compressed(self._version, head, compressor)
        tail = cached.compressor.copy()
        return b"".join((cached.head, tail.compress(rest), tail.flush()))

    def _layout(self, config: Config, now: float) -> None:
        self._config = config
        self._places, self._owner, tallies = [], [], []
        self._section = array("i")
        for checklist in config.checklists:
            spans = []
            tally = _Tally(
                checklist, (), [0] * len(checklist.sections), [0] * len(checklist.sections)
            )
            for at, section in enumerate(checklist.sections):
                start = len(self._places)
                for item in section.items:
                    kind = item.kind  # a probe kind's name: nothing to escape
                    labels = (
                        label_value(checklist.name),
                        label_value(section.name),
                        label_value(item.id),
                        item.severity.value,
                        kind,
                        label_value(self.source.redactor.text(item.title)),
                    )
                    place = _Place(
                        ItemKey(checklist.name, item.id), checklist, section, item, kind, labels
                    )
                    self._places.append(place)
                    self._owner.append(tally)
                    self._section.append(at)
                spans.append((section, start, len(self._places)))
            tally.spans = tuple(spans)
            tallies.append(tally)
        self._summary.tallies = tallies
        self._summary.kinds = sorted({p.kind for p in self._places} - PASSIVE_KINDS)
        self._keys = [p.key for p in self._places]
        self._index = {key: i for i, key in enumerate(self._keys)}
        dependents = {i for i, p in enumerate(self._places) if p.item.depends_on}
        named = {
            resolve(self._places[i].key.checklist, reference)
            for i in dependents
            for reference in self._places[i].item.depends_on
        }
        self._depended = [i for i, key in enumerate(self._keys) if key in named]
        states = self.source.states()
        self._dependents, self._families = {}, [_Blocks() for _ in ITEM_FAMILIES]
        self._seen, self._untils, self._flags = [], array("d"), bytearray()
        # A block at a time: the lines of 10,000 items never exist at once as separate objects,
        # whose freed memory the allocator would keep (RSS) around what lives on.
        for start in range(0, len(self._places), BLOCK):
            places = self._places[start : start + BLOCK]
            block = [_render(p, states.get(p.key), now) for p in places]
            for i, blocks in enumerate(self._families):
                blocks.append([r.lines[i] for r in block])
            for index, place, rendered in zip(
                range(start, start + len(places)), places, block, strict=True
            ):
                self._seen.append(states.get(place.key))
                self._untils.append(rendered.until)
                self._flags.append(rendered.flags)
                self._owner[index].count(self._section[index], rendered.flags, 1)
                if index in dependents:
                    self._dependents[index] = rendered.view
        self._until = min(self._untils, default=float("inf"))
        self._version += 1

    def _labels(self, index: int) -> list[str]:
        place = self._places[index]
        return [place.key.checklist, place.section.name, place.key.item]

    def _blockers(self, index: int) -> tuple[ItemKey, ...]:
        """What blocks the item (evaluate's rule, on the views rendered here)."""
        place, view = self._places[index], self._dependents[index]
        if not can_be_blocked(view):
            return ()

        def passing(key: ItemKey) -> bool | None:
            at = self._index.get(key)
            return None if at is None else bool(self._flags[at] & PASSING)

        return blocked_by(place.key.checklist, place.item.depends_on, passing)

    def _changed(self, states: Mapping[ItemKey, ItemState]) -> list[int]:
        """The places whose state was replaced since the last scrape. From the source's change
        feed when it has one (the daemon's store logs every key it sets): a scan of 10,000
        states costs 5-10 ms in memory reads alone on a busy heap. Else (or when the feed
        no longer reaches back to the last scrape) every state is compared, in C loops."""
        feed = getattr(self.source, "changed_since", None)
        keys: Iterable[ItemKey] | None = None
        if feed is not None:
            keys, self._mark = feed(self._mark)
        seen = self._seen
        if keys is None:
            return list(compress(range(len(seen)), map(is_not, map(states.get, self._keys), seen)))
        index = self._index
        candidates = sorted({at for key in keys if (at := index.get(key)) is not None})
        return [i for i in candidates if states.get(self._keys[i]) is not seen[i]]

    def _item_families(self, openmetrics: bool) -> list[bytes]:
        config = self.source.config
        now = self.source.clock.now()
        states = self.source.states()
        changed = self._changed(states)
        if config is not self._config:
            self._layout(config, now)
            changed = []
        if now >= self._until:
            changed = sorted({*changed, *(i for i, u in enumerate(self._untils) if now >= u)})
        earliest = self._until
        recompute = False
        for index in changed:
            place = self._places[index]
            state = states.get(place.key)
            done = _render(place, state, now)
            for blocks, line in zip(self._families, done.lines, strict=True):
                blocks.replace(index, line)
            tally, section = self._owner[index], self._section[index]
            tally.count(section, self._flags[index], -1)
            tally.count(section, done.flags, 1)
            # The earliest boundary moves later only if this item held it.
            recompute |= self._untils[index] <= self._until < math.inf
            earliest = min(earliest, done.until)
            self._seen[index], self._untils[index], self._flags[index] = (
                state,
                done.until,
                done.flags,
            )
            if index in self._dependents:
                self._dependents[index] = done.view
        if changed:
            self._until = min(self._untils) if recompute else earliest
            self._version += 1
        for tally in self._summary.tallies:
            if tally.dirty:
                tally.update()
        self._summary.now, self._summary.states = now, states
        blockers = {i: self._blockers(i) for i in self._dependents}
        behind = Counter(key for keys in blockers.values() for key in keys)
        self._summary.blocked = [(self._labels(i), float(bool(blockers[i]))) for i in blockers]
        self._summary.blocking = [
            (self._labels(i), float(behind[self._keys[i]])) for i in self._depended
        ]
        parts: list[bytes] = []
        for family, blocks in zip(ITEM_FAMILIES, self._families, strict=True):
            name, doc = family.name, help_text(family.help, openmetrics)
            parts.append(f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n".encode())
            parts.extend(blocks.blocks)
        return parts
