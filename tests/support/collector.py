"""The reference rendering of /metrics: a plain prometheus_client Collector over evaluate's
views, built from the same table of families, which the fast path must match byte for byte."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.dependencies import resolve
from exporter.evaluate import evaluate
from exporter.exposition import MetricsSource, daemon_families
from exporter.metrics import (
    CHECKLIST_LIVE,
    CHECKLIST_READY,
    CHECKLIST_SCORE,
    ITEM_BLOCKED,
    ITEM_BLOCKING,
    ITEM_DUE,
    ITEM_DURATION,
    ITEM_FAILURE_REASON,
    ITEM_INFO,
    ITEM_LAPSED,
    ITEM_LAST_RUN,
    ITEM_LAST_SUCCESS,
    ITEM_PASSING,
    ITEM_WAIVED,
    ITEM_WAIVER_EXPIRY,
    SECTION_SCORE,
)
from exporter.results import PASSIVE_KINDS


class ReadinessCollector(Collector):
    def __init__(self, source: MetricsSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        source = self.source
        config = source.config
        views = evaluate(config, source.states(), source.clock.now())

        passing, lapsed, last_run, last_success = (
            ITEM_PASSING.gauge(),
            ITEM_LAPSED.gauge(),
            ITEM_LAST_RUN.gauge(),
            ITEM_LAST_SUCCESS.gauge(),
        )
        due, duration, info, reason = (
            ITEM_DUE.gauge(),
            ITEM_DURATION.gauge(),
            ITEM_INFO.gauge(),
            ITEM_FAILURE_REASON.gauge(),
        )
        waived, waiver_expiry = ITEM_WAIVED.gauge(), ITEM_WAIVER_EXPIRY.gauge()
        section_score, checklist_score, ready, live = (
            SECTION_SCORE.gauge(),
            CHECKLIST_SCORE.gauge(),
            CHECKLIST_READY.gauge(),
            CHECKLIST_LIVE.gauge(),
        )
        blocked, blocking = ITEM_BLOCKED.gauge(), ITEM_BLOCKING.gauge()
        every = [v for view in views for v in view.items]
        named = {
            resolve(v.checklist.name, reference) for v in every for reference in v.item.depends_on
        }
        behind = Counter(key for v in every for key in v.blocked_by)

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
                    title = self.source.redactor.text(v.item.title)
                    info.add_metric([*labels, v.item.kind, title], 1.0)
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
                    if v.state.waivers:
                        waived.add_metric(labels, float(v.waiver is not None))
                    if v.waiver is not None:
                        waiver_expiry.add_metric(labels, v.waiver.expires)
                    if v.item.depends_on:
                        blocked.add_metric(labels, float(v.blocked))
                    if v.key in named:
                        blocking.add_metric(labels, float(behind[v.key]))
            checklist_score.add_metric([name], view.score)
            ready.add_metric([name], float(view.ready))
            live.add_metric([name], float(view.live))

        yield from (passing, lapsed, last_run, last_success, due, duration, info, reason)
        yield from (waived, waiver_expiry)
        yield from (section_score, checklist_score, ready, live, blocked, blocking)

        probed = {i.kind for c in config.checklists for s in c.sections for i in s.items}
        yield from daemon_families(source, probed - PASSIVE_KINDS)
