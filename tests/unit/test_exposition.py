"""The fast /metrics path renders exactly what the reference collector does, in both encodings,
as state changes and as the clock crosses due, lapse and go-live boundaries."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.clock import FixedClock
from exporter.config import Config
from exporter.exposition import Exposition, help_text, label_value, sample_value, wants_gzip
from exporter.loader import parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.results import Attestation, ItemKey, ItemState, Result, Waiver
from exporter.state.cache import StateCache
from exporter.state.sqlite import SqliteStore
from tests.support.collector import ReadinessCollector

T0 = 1_700_000_000.0
DAY = 86400.0

CONFIG = """
checklists:
  - name: shop
    go_live: "2023-11-01T00:00:00Z"
    sections:
      - name: overview
        items: []
      - name: web
        items:
          - id: health
            title: 'Health "quoted" \\ back\\slash'
            severity: critical
            http: {url: "http://127.0.0.1:1/health"}
          - id: port
            title: Port open
            tcp: {host: 127.0.0.1, port: 1}
          - id: never-run
            title: Not run yet
            depends_on: [port, later/signed-off]
            tcp: {host: 127.0.0.1, port: 2}
      - name: ops
        items:
          - id: restore-test
            title: Restore tested
            every: 1d
            grace: 1h
            manual: {}
          - id: backup
            title: Backup fresh
            severity: critical
            every: 2d
            depends_on: [health]
            file: {path: /var/backups/db.dump}
  - name: later
    go_live: "2023-11-16T12:00:00Z"
    sections:
      - name: all
        items:
          - id: signed-off
            title: Signed off
            manual: {}
"""


class Source:
    def __init__(self, config: Config, clock: FixedClock) -> None:
        self.config = config
        self.clock = clock
        self.state: dict[ItemKey, ItemState] = {}
        self.runs: Counter[tuple[str, str]] = Counter({("http", "success"): 3})
        self.reload_successful = True
        self.reload_timestamp = T0 - 10
        self.state_write_errors = ("sqlite", 0)
        self.redactor = Redactor()

    def states(self) -> Mapping[ItemKey, ItemState]:
        return self.state


def ok(at: float) -> Result:
    return Result(True, Reason.OK, at, 0.012, {"status": 200})


def attested(checklist: str, item: str, at: float, src: Source) -> Attestation:
    definition = next(
        i
        for c in src.config.checklists
        for s in c.sections
        for i in s.items
        if (c.name, i.id) == (checklist, item)
    )
    return Attestation(checklist, item, "alice", at, definition.fingerprint)


@pytest.fixture
def source() -> Source:
    clock = FixedClock(T0)
    src = Source(parse_config(CONFIG).config, clock)
    src.state = {
        ItemKey("shop", "health"): ItemState(ok(T0 - 5), T0 - 5, T0 - DAY),
        ItemKey("shop", "port"): ItemState(
            Result(False, Reason.CONNECT, T0 - 3, 0.001, {}, (), "refused"), None, T0 - DAY
        ),
        ItemKey("shop", "restore-test"): ItemState(
            None, None, T0 - DAY, attested("shop", "restore-test", T0 - 3600, src)
        ),
        ItemKey("later", "signed-off"): ItemState(
            None, None, T0 - DAY, attested("later", "signed-off", T0 - 60, src)
        ),
        ItemKey("shop", "backup"): ItemState(ok(T0 - 7200), T0 - 7200, T0 - DAY),
    }
    return src


def reference(source: Source, openmetrics: bool) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadinessCollector(source))
    return (generate_openmetrics if openmetrics else generate_latest)(registry)


def fast(exposition: Exposition, openmetrics: bool) -> bytes:
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"
    body, content_type = exposition.render(accept)
    assert content_type.startswith("application/openmetrics-text" if openmetrics else "text/plain")
    return body


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_the_fast_path_renders_what_the_collector_renders(
    source: Source, openmetrics: bool
) -> None:
    exposition = Exposition(source, process=False)

    assert fast(exposition, openmetrics) == reference(source, openmetrics)


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_a_heading_kept_from_the_document_has_no_section_score(
    source: Source, openmetrics: bool
) -> None:
    for body in (
        fast(Exposition(source, process=False), openmetrics),
        reference(source, openmetrics),
    ):
        text = body.decode()
        assert 'readiness_section_score_ratio{checklist="shop",section="web"}' in text
        assert 'section="overview"' not in text


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_a_new_result_is_rendered_at_the_next_scrape(source: Source, openmetrics: bool) -> None:
    exposition = Exposition(source, process=False)
    fast(exposition, openmetrics)

    source.state[ItemKey("shop", "port")] = ItemState(ok(T0 + 1), T0 + 1, T0 - DAY)
    source.state[ItemKey("shop", "never-run")] = ItemState(ok(T0 + 1), T0 + 1, T0)
    source.runs[("tcp", "success")] += 2

    body = fast(exposition, openmetrics)
    assert body == reference(source, openmetrics)
    assert b'readiness_item_passing{checklist="shop",item="port"' in body


@pytest.mark.parametrize(
    ("seconds", "changed"),
    [
        (DAY - 3600, "restore-test attestation ends at due"),
        (DAY, "restore-test still within grace"),
        (DAY + 1, "restore-test lapsed"),
        (2 * DAY - 7200, "backup due"),
        (2 * DAY - 7199, "backup past due, no grace: lapsed"),
        (2 * DAY, "later goes live"),
    ],
)
def test_crossing_a_boundary_re_renders_the_item(
    source: Source, seconds: float, changed: str
) -> None:
    exposition = Exposition(source, process=False)
    before = fast(exposition, False)

    assert isinstance(source.clock, FixedClock)
    source.clock.advance(seconds)

    body = fast(exposition, False)
    assert body == reference(source, False), changed
    assert body != before, changed


def test_a_reloaded_config_is_rendered_from_scratch(source: Source) -> None:
    exposition = Exposition(source, process=False)
    fast(exposition, False)

    source.config = parse_config(CONFIG.replace("Port open", "Port reachable")).config

    body = fast(exposition, False)
    assert body == reference(source, False)
    assert b'title="Port reachable"' in body


def test_the_scheduler_lag_histogram_is_served(source: Source) -> None:
    from exporter.lag import LagCollector, LagHistogram

    lag = LagHistogram()
    lag.observe(0.003)
    lag.observe(2.0)

    body = Exposition(source, LagCollector(lag), process=False).render("")[0].decode()

    assert 'readiness_scheduler_lag_seconds_bucket{le="0.005"} 1.0' in body
    assert 'readiness_scheduler_lag_seconds_bucket{le="+Inf"} 2.0' in body
    assert "readiness_scheduler_lag_seconds_count 2.0" in body


def test_a_go_live_attestation_is_rendered_at_the_next_scrape(source: Source) -> None:
    exposition = Exposition(source, process=False)
    before = fast(exposition, False)
    assert b'readiness_checklist_live{checklist="later"} 0.0' in before

    source.state[ItemKey("later", "go-live")] = ItemState(
        None, None, None, Attestation("later", "go-live", "alice", T0 - 1, "")
    )

    body = fast(exposition, False)
    assert body == reference(source, False)
    assert b'readiness_checklist_live{checklist="later"} 1.0' in body


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_a_gzip_scrape_decompresses_to_the_plain_one_after_every_change(
    source: Source, openmetrics: bool
) -> None:
    exposition = Exposition(source, process=False)
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"

    def both() -> tuple[bytes, bytes]:
        body, _ = exposition.render(accept, gzip=True)
        # One gzip member: a client that reads only the first (httpx, curl) gets everything.
        unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        unzipped = unzip.decompress(body) + unzip.flush()
        assert unzip.eof and not unzip.unused_data
        return unzipped, exposition.render(accept)[0]

    unzipped, plain = both()
    assert unzipped == plain
    source.runs[("tcp", "success")] += 1  # only the small families move
    assert both()[0] == reference(source, openmetrics)
    source.state[ItemKey("shop", "port")] = ItemState(ok(T0 + 1), T0 + 1, T0 - DAY)
    unzipped, plain = both()
    assert unzipped == plain == reference(source, openmetrics)
    assert b'readiness_item_passing{checklist="shop",item="port",section="web",severity=' in plain


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, identity", False),
        ("identity", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_gzip_is_chosen_only_when_accepted(header: str, gzip: bool) -> None:
    assert wants_gzip(header) is gzip


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (1.0, "1.0"),
        (0.012, "0.012"),
        (-2.5, "-2.5"),
        (123456.0, "123456.0"),
        (1234567.0, "1.234567e+06"),
        (T0, "1.7e+09"),
        (T0 + 5.25, "1.70000000525e+09"),
        (-T0, "-1700000000.0"),
        (1e22, "1e+22"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_sample_values_are_written_as_prometheus_writes_them(value: float, text: str) -> None:
    assert sample_value(value) == text


def test_label_values_and_help_are_escaped() -> None:
    assert label_value('a\\b "c"\nd') == r"a\\b \"c\"\nd"
    assert help_text('say "hi"\\\n', openmetrics=False) == r'say "hi"\\\n'
    assert help_text('say "hi"\\\n', openmetrics=True) == r"say \"hi\"\\\n"


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_a_title_with_a_newline_quote_and_backslash_is_escaped(openmetrics: bool) -> None:
    config = """
checklists:
  - name: shop
    sections:
      - name: ops
        items:
          - id: signed
            title: "Line one\\nsaid \\"yes\\" \\\\ done"
            manual: {}
"""
    source = Source(parse_config(config).config, FixedClock(T0))

    body = fast(Exposition(source, process=False), openmetrics)

    assert body == reference(source, openmetrics)
    assert b'title="Line one\\nsaid \\"yes\\" \\\\ done"' in body


def test_every_family_served_is_one_of_the_table() -> None:
    from exporter.lag import LagCollector, LagHistogram

    clock = FixedClock(T0)
    src = Source(parse_config(CONFIG).config, clock)
    src.state = {ItemKey("shop", "port"): ItemState(ok(T0 - 5), T0 - 5, T0 - DAY)}
    port = next(
        i for c in src.config.checklists for s in c.sections for i in s.items if i.id == "port"
    )
    waiver = Waiver("shop", "port", "not here", "ann", T0 - 9, T0 + DAY, port.fingerprint)
    src.state[ItemKey("shop", "port")] = ItemState(
        ok(T0 - 5), T0 - 5, T0 - DAY, waivers=(replace(waiver, approved_by="bo", approved_at=T0),)
    )
    src.state[ItemKey("shop", "backup")] = ItemState(
        Result(False, Reason.CONNECT, T0 - 3, 0.001, {}), None, T0 - DAY
    )
    body = Exposition(src, LagCollector(LagHistogram()), process=False).render("")[0].decode()

    served = {
        (f.name, f.type, f.documentation): {label for s in f.samples for label in s.labels}
        for f in text_string_to_metric_families(body)
    }
    table = {
        (f.name.removesuffix("_total"), f.type, f.help): set(f.labels) for f in metrics.FAMILIES
    }
    for key, labels in served.items():
        assert key in table, key
        assert labels - {"le"} == table[key], key
    assert set(served) == set(table)


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_items_across_many_blocks_are_rendered_as_the_collector_renders(
    openmetrics: bool,
) -> None:
    """The item families are joined in blocks of BLOCK items: a change in any block (first,
    middle, last and partial) shows at the next scrape, and nothing else moves."""
    from exporter.exposition import BLOCK

    count = 2 * BLOCK + 5
    items = "".join(
        f"          - id: i{n}\n            title: Item {n}\n"
        f"            tcp: {{host: 127.0.0.1, port: {1000 + n}}}\n"
        for n in range(count)
    )
    config = parse_config(
        f"checklists:\n  - name: big\n    sections:\n      - name: all\n        items:\n{items}"
    ).config
    source = Source(config, FixedClock(T0))
    source.state = {
        ItemKey("big", f"i{n}"): ItemState(ok(T0 - n), T0 - n, T0) for n in range(count)
    }
    exposition = Exposition(source, process=False)
    assert fast(exposition, openmetrics) == reference(source, openmetrics)

    for n in (0, BLOCK - 1, BLOCK, 2 * BLOCK + 4):
        source.state[ItemKey("big", f"i{n}")] = ItemState(
            Result(False, Reason.CONNECT, T0 + n, 0.001, {}, (), "refused"), None, T0
        )
        assert fast(exposition, openmetrics) == reference(source, openmetrics), n
    assert fast(exposition, openmetrics).count(b"readiness_item_passing{") == count


class StoreSource(Source):
    """The daemon's way: states from a store, with the store's change feed."""

    def __init__(self, config: Config, clock: FixedClock, store: SqliteStore) -> None:
        super().__init__(config, clock)
        self.store = store

    def states(self) -> Mapping[ItemKey, ItemState]:
        return self.store.states()

    def changed_since(self, mark: int | None) -> tuple[list[ItemKey] | None, int]:
        return self.store.changed_since(mark)


async def test_what_the_store_changes_is_rendered_at_the_next_scrape() -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        source = StoreSource(parse_config(CONFIG).config, FixedClock(T0), store)
        exposition = Exposition(source, process=False)
        assert fast(exposition, False) == reference(source, False)

        await store.track([ItemKey("shop", "port"), ItemKey("shop", "backup")], T0 - DAY)
        await store.record(ItemKey("shop", "port"), ok(T0 + 1))
        await store.record(ItemKey("shop", "health"), replace(ok(T0 + 1), passing=False))
        body = fast(exposition, False)
        assert body == reference(source, False)
        assert b'readiness_item_passing{checklist="shop",item="port"' in body

        await store.attest(attested("later", "signed-off", T0 + 2, source))
        await store.record(ItemKey("shop", "port"), replace(ok(T0 + 3), passing=False))
        assert fast(exposition, True) == reference(source, True)
        source.clock.advance(2 * DAY)  # and the clock: backup lapses
        assert fast(exposition, False) == reference(source, False)
    finally:
        await store.close()


def test_the_change_feed_names_each_key_set_since_a_mark() -> None:
    cache = StateCache()
    keys = [ItemKey("app", f"i{n}") for n in range(3)]
    none, mark = cache.changed_since(None)
    assert none is None
    cache._set_result(keys[0], ok(T0), T0, T0)
    cache._set_first_seen(keys[1:], T0)
    changed, later = cache.changed_since(mark)
    assert changed == keys
    assert cache.changed_since(later) == ([], later)
    # A feed nobody reads starts over: a mark from before that asks for every state.
    for n in range(len(keys) + 1025):
        cache._set_result(keys[0], ok(T0 + n), T0 + n, T0)
    assert cache.changed_since(later)[0] is None
