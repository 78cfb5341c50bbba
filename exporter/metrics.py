"""The metric families the exporter serves (DESIGN.md's names): one table every renderer reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

ITEM = ("checklist", "section", "item")


@dataclass(frozen=True, eq=False)
class Family:
    """One metric family: its exposed name (a counter's with `_total`), type, HELP and labels.
    Compared and hashed by identity: each is a constant of this table, and the renderer keys a
    dict by family per item rendered (a field-wise hash would cost more than the rendering)."""

    name: str
    type: Literal["gauge", "counter", "histogram"]
    help: str
    labels: tuple[str, ...] = ()

    def gauge(self) -> GaugeMetricFamily:
        """A prometheus_client family with no samples yet, for a Collector to fill."""
        return GaugeMetricFamily(self.name, self._help_for("gauge"), labels=self.labels)

    def counter(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self._help_for("counter"), labels=self.labels)

    def histogram(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self._help_for("histogram"), labels=self.labels)

    def _help_for(self, kind: str) -> str:
        if kind != self.type:
            raise TypeError(f"{self.name} is a {self.type}, not a {kind}")
        return self.help


ITEM_PASSING = Family(
    "readiness_item_passing",
    "gauge",
    "1 when the item's last run met every condition.",
    (*ITEM, "severity"),
)
ITEM_LAPSED = Family(
    "readiness_item_lapsed",
    "gauge",
    "Recurring items: 1 when no success within every + grace.",
    (*ITEM, "severity"),
)
ITEM_LAST_RUN = Family(
    "readiness_item_last_run_timestamp_seconds", "gauge", "When the item's probe last ran.", ITEM
)
ITEM_LAST_SUCCESS = Family(
    "readiness_item_last_success_timestamp_seconds",
    "gauge",
    "When the item last passed (or was last attested).",
    ITEM,
)
ITEM_DUE = Family(
    "readiness_item_due_timestamp_seconds",
    "gauge",
    "Recurring items: when the item lapses without a new success.",
    ITEM,
)
ITEM_DURATION = Family(
    "readiness_item_probe_duration_seconds", "gauge", "How long the item's last probe took.", ITEM
)
ITEM_INFO = Family(
    "readiness_item_info", "gauge", "Item metadata; always 1.", (*ITEM, "kind", "title")
)
ITEM_FAILURE_REASON = Family(
    "readiness_item_failure_reason",
    "gauge",
    "1 for the current reason while the item is not passing.",
    (*ITEM, "reason"),
)
ITEM_WAIVED = Family(
    "readiness_item_waived",
    "gauge",
    "1 while an approved waiver holds (the item is left out of score and readiness).",
    ITEM,
)
ITEM_WAIVER_EXPIRY = Family(
    "readiness_item_waiver_expiry_timestamp_seconds",
    "gauge",
    "When the waiver in effect ends.",
    ITEM,
)
SECTION_SCORE = Family(
    "readiness_section_score_ratio", "gauge", "Passing items over items.", ("checklist", "section")
)
CHECKLIST_SCORE = Family(
    "readiness_checklist_score_ratio", "gauge", "Passing items over items.", ("checklist",)
)
CHECKLIST_READY = Family(
    "readiness_checklist_ready",
    "gauge",
    "1 when every critical and warning item passes, none lapsed, score >= ready_min_score.",
    ("checklist",),
)
CHECKLIST_LIVE = Family("readiness_checklist_live", "gauge", "1 after go-live.", ("checklist",))
ITEM_BLOCKED = Family(
    "readiness_item_blocked",
    "gauge",
    "Items with depends_on: 1 while the item fails and a dependency is not passing.",
    ITEM,
)
ITEM_BLOCKING = Family(
    "readiness_item_blocking",
    "gauge",
    "Items named in a depends_on: how many failing items are blocked behind this one.",
    ITEM,
)
PROBE_RUNS = Family(
    "readiness_probe_runs_total", "counter", "Probe runs by kind and result.", ("kind", "result")
)
RELOAD_SUCCESSFUL = Family(
    "readiness_config_last_reload_successful",
    "gauge",
    "1 when the last config (re)load succeeded.",
)
RELOAD_TIMESTAMP = Family(
    "readiness_config_last_reload_success_timestamp_seconds",
    "gauge",
    "When the config was last loaded successfully.",
)
STATE_WRITE_ERRORS = Family(
    "readiness_state_write_errors_total",
    "counter",
    "Writes the state store could not take.",
    ("store",),
)
BUILD_INFO = Family(
    "readiness_build_info", "gauge", "Build information; always 1.", ("version", "python")
)
WAIVER_WARNING = Family(
    "readiness_waiver_warning_seconds",
    "gauge",
    "How long before a waiver expires the shipped alert warns (exporter.waiver_warning).",
)
SCHEDULER_LAG = Family(
    "readiness_scheduler_lag_seconds",
    "histogram",
    "How late the scheduler started probe runs: actual minus planned start.",
)

ITEM_FAMILIES = (
    ITEM_PASSING,
    ITEM_LAPSED,
    ITEM_LAST_RUN,
    ITEM_LAST_SUCCESS,
    ITEM_DUE,
    ITEM_DURATION,
    ITEM_INFO,
    ITEM_FAILURE_REASON,
    ITEM_WAIVED,
    ITEM_WAIVER_EXPIRY,
)
"""One entry per item, in the order /metrics serves them."""
SUMMARY_FAMILIES = (
    SECTION_SCORE,
    CHECKLIST_SCORE,
    CHECKLIST_READY,
    CHECKLIST_LIVE,
    ITEM_BLOCKED,
    ITEM_BLOCKING,
)
DAEMON_FAMILIES = (
    PROBE_RUNS,
    RELOAD_SUCCESSFUL,
    RELOAD_TIMESTAMP,
    STATE_WRITE_ERRORS,
    BUILD_INFO,
    WAIVER_WARNING,
    SCHEDULER_LAG,
)
FAMILIES = (*ITEM_FAMILIES, *SUMMARY_FAMILIES, *DAEMON_FAMILIES)
"""Every readiness_* family (the lag histogram is served last, after process_* and python_info)."""
