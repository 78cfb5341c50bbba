"""A prometheus_client Collector that renders the store at scrape time (DESIGN.md's names)."""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.clock import Clock
from exporter.evaluate import evaluate
from exporter.results import RUN_RESULTS, ItemKey, ItemState

if TYPE_CHECKING:
    from exporter.config import Config

ITEM = ["checklist", "section", "item"]


class MetricsSource(Protocol):
    """What the collector reads: the daemon, or a one-shot `check` run."""

    clock: Clock

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


class ReadinessCollector(Collector):
    def __init__(self, source: MetricsSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        source = self.source
        config = source.config
        views = evaluate(config, source.states(), source.clock.now())

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        passing = gauge(
            "readiness_item_passing",
            "1 when the item's last run met every condition.",
            [*ITEM, "severity"],
        )
        lapsed = gauge(
            "readiness_item_lapsed",
            "Recurring items: 1 when no success within every + grace.",
            [*ITEM, "severity"],
        )
        last_run = gauge(
            "readiness_item_last_run_timestamp_seconds", "When the item's probe last ran.", ITEM
        )
        last_success = gauge(
            "readiness_item_last_success_timestamp_seconds",
            "When the item last passed (or was last attested).",
            ITEM,
        )
        due = gauge(
            "readiness_item_due_timestamp_seconds",
            "Recurring items: when the item lapses without a new success.",
            ITEM,
        )
        duration = gauge(
            "readiness_item_probe_duration_seconds", "How long the item's last probe took.", ITEM
        )
        info = gauge("readiness_item_info", "Item metadata; always 1.", [*ITEM, "kind", "title"])
        reason = gauge(
            "readiness_item_failure_reason",
            "1 for the current reason while the item is not passing.",
            [*ITEM, "reason"],
        )
        section_score = gauge(
            "readiness_section_score_ratio", "Passing items over items.", ["checklist", "section"]
        )
        checklist_score = gauge(
            "readiness_checklist_score_ratio", "Passing items over items.", ["checklist"]
        )
        ready = gauge(
            "readiness_checklist_ready",
            "1 when every critical and warning item passes, none lapsed, score >= ready_min_score.",
            ["checklist"],
        )
        live = gauge("readiness_checklist_live", "1 after go-live.", ["checklist"])

        for view in views:
            name = view.checklist.name
            for section_view in view.sections:
                section = section_view.section.name
                if section_view.items:  # a heading kept from the document, nothing to score
                    section_score.add_metric([name, section], section_view.score)
                for v in section_view.items:
                    labels = [name, section, v.item.id]
                    severity = v.item.severity.value
                    passing.add_metric([*labels, severity], float(v.passing))
                    info.add_metric([*labels, v.item.kind, v.item.title], 1.0)
                    result = v.state.result
                    if result is not None and v.item.kind != "manual":
                        last_run.add_metric(labels, result.started_at)
                        duration.add_metric(labels, result.duration)
                    if v.state.last_success is not None:
                        last_success.add_metric(labels, v.state.last_success)
                    if v.due is not None:
                        lapsed.add_metric([*labels, severity], float(v.lapsed))
                        due.add_metric(labels, v.due)
                    if not v.passing:
                        reason.add_metric([*labels, v.reason.value], 1.0)
            checklist_score.add_metric([name], view.score)
            ready.add_metric([name], float(view.ready))
            live.add_metric([name], float(view.live))

        yield from (
            passing,
            lapsed,
            last_run,
            last_success,
            due,
            duration,
            info,
            reason,
            section_score,
            checklist_score,
            ready,
            live,
        )

        probed = {i.kind for c in config.checklists for s in c.sections for i in s.items}
        yield from daemon_families(source, probed - {"manual"})


def daemon_families(source: MetricsSource, kinds: Iterable[str]) -> Iterator[Metric]:
    """The exporter's own families: probe runs (a zero series for every probed kind), config
    reload state, failed state writes, build info."""
    runs = CounterMetricFamily(
        "readiness_probe_runs", "Probe runs by kind and result.", labels=["kind", "result"]
    )
    counted = source.runs
    for kind in sorted(set(kinds) | {k for k, _ in counted}):
        for result_label in RUN_RESULTS:
            runs.add_metric([kind, result_label], counted[(kind, result_label)])
    yield runs
    reload_ok = GaugeMetricFamily(
        "readiness_config_last_reload_successful", "1 when the last config (re)load succeeded."
    )
    reload_ok.add_metric([], float(source.reload_successful))
    yield reload_ok
    reload_ts = GaugeMetricFamily(
        "readiness_config_last_reload_success_timestamp_seconds",
        "When the config was last loaded successfully.",
    )
    reload_ts.add_metric([], source.reload_timestamp)
    yield reload_ts
    write_errors = CounterMetricFamily(
        "readiness_state_write_errors",
        "Writes the state store could not take.",
        labels=["store"],
    )
    store, failed = source.state_write_errors
    write_errors.add_metric([store], failed)
    yield write_errors
    build = GaugeMetricFamily(
        "readiness_build_info", "Build information; always 1.", labels=["version", "python"]
    )
    build.add_metric([__version__, platform.python_version()], 1.0)
    yield build
