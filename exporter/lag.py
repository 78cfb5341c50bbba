"""How late the scheduler starts jobs: a histogram of actual start minus planned start."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.metrics import SCHEDULER_LAG

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class LagHistogram:
    """Counts per bucket, filled by the scheduler on every job it submits (one bisect: free
    compared with the run it measures) and read only when /metrics is scraped."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class LagCollector(Collector):
    """readiness_scheduler_lag_seconds: when a job was submitted minus when it was planned
    (the planned time includes each item's phase, so only the exporter's own delay counts)."""

    def __init__(self, histogram: LagHistogram) -> None:
        self.histogram = histogram

    def collect(self) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        for bound, count in zip((*BUCKETS, float("inf")), self.histogram.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family = SCHEDULER_LAG.histogram()
        family.add_metric([], buckets, self.histogram.total)
        yield family
