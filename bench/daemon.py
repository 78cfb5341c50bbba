"""The whole daemon as a user runs it: `readiness-exporter serve` as a subprocess on a generated
config, its CPU read from /proc/PID/stat, side by side with blackbox_exporter in the same run.

Two parts, both called from bench/run.py:
- throughput: N `http` (then `tcp`) items at `interval: 1s` against a loopback nginx without
  keep-alive; probe runs per CPU-second of the whole process (scheduler, store, metrics and
  scrapes included), against blackbox_exporter driven by wrk at the same target;
- scale: N `tcp` items at one interval: time to /health/live, /health/ready and the end of the
  first full round from spawning, steady RSS, /metrics p50/p99 (plain and gzip) while probes
  run, scheduler lag p50/p99 and CPU per item-run over a steady window.

Every wait has a deadline, every program listens on loopback, everything lives in a temp dir."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import cpu_seconds
from targets import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DaemonPlan:
    throughput_items: int
    throughput_window: float
    """Seconds of steady state over which the daemon's runs and CPU are counted."""
    sizes: tuple[int, ...]
    interval: float
    """Seconds between two runs of one item in the scale part."""
    window: float
    scrapes: int
    """Scrapes of /metrics per encoding (fewer above 10,000 items: each is tens of MB)."""
    deadline: float
    """Seconds any one phase (startup, first round) may take before the bench gives up."""


DAEMON_FULL = DaemonPlan(500, 10.0, (100, 1_000, 10_000, 50_000), 60.0, 20.0, 30, 180.0)
DAEMON_QUICK = DaemonPlan(40, 2.0, (20, 200), 2.0, 2.0, 6, 60.0)


# --- reading the daemon from outside ---------------------------------------------------------
def get(url: str, headers: dict[str, str] | None = None) -> tuple[float, bytes, dict[str, str]]:
    """(seconds, body, headers) of a GET, timed client-side including the transfer."""
    request = urllib.request.Request(url, headers=headers or {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        head = {k.lower(): v for k, v in response.headers.items()}
    return time.perf_counter() - started, body, head


def metrics(url: str) -> bytes:
    """The /metrics text, fetched gzip-compressed (cheaper for both sides at 50,000 items)."""
    _, body, head = get(f"{url}/metrics", {"Accept-Encoding": "gzip"})
    return gzip.decompress(body) if head.get("content-encoding") == "gzip" else body


def samples(body: bytes, name: str) -> Iterator[tuple[str, float]]:
    """(labels text, value) of every sample of `name` (the exposition is simple enough)."""
    prefix = name.encode()
    for line in body.splitlines():
        if line.startswith(prefix) and line[len(prefix) : len(prefix) + 1] in (b"{", b" "):
            head, _, value = line.rpartition(b" ")
            yield head[len(prefix) :].decode(), float(value)


def runs_total(body: bytes) -> float:
    return sum(v for _, v in samples(body, "readiness_probe_runs_total"))


def lag_buckets(body: bytes) -> dict[float, float]:
    out = {}
    for labels, value in samples(body, "readiness_scheduler_lag_seconds_bucket"):
        le = re.search(r'le="([^"]+)"', labels)
        assert le is not None
        out[float(le.group(1))] = value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float:
    """histogram_quantile as Prometheus computes it: linear within the bucket."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match.group(1)) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# --- a daemon as a user starts it ------------------------------------------------------------
def config_yaml(kind: str, items: int, interval: float, nginx_port: int) -> str:
    """`items` items of one kind against nginx, 100 per section, 1,000 per checklist."""
    probe = {
        "http": f'http: {{url: "http://127.0.0.1:{nginx_port}/health"}}',
        "tcp": f"tcp: {{host: 127.0.0.1, port: {nginx_port}}}",
    }[kind]
    lines = [
        "exporter:",
        f"  default_interval: {interval:g}s",
        "  default_timeout: 5s",
        "  log_level: warning",
        "checklists:",
    ]
    for n in range(items):
        if n % 1000 == 0:
            lines += [f"  - name: service-{n // 1000}", "    sections:"]
        if n % 100 == 0:
            lines += [f"      - name: section-{n // 100 % 10}", "        items:"]
        lines += [f"          - id: item-{n}", f"            title: Item {n} ({kind})"]
        lines.append(f"            {probe}")
    return "\n".join(lines) + "\n"


@dataclass
class Spawned:
    proc: subprocess.Popen[bytes]
    url: str
    spawned: float
    """time.time() just before the process was started."""
    spawned_mono: float


@contextlib.contextmanager
def serve(run_dir: Path, config: str) -> Iterator[Spawned]:
    """`readiness-exporter serve --config FILE` with a fresh SQLite state, stopped (SIGTERM, then
    SIGKILL) on the way out."""
    run_dir.mkdir(parents=True)
    path = run_dir / "config.yaml"
    path.write_text(config)
    listen = free_port()
    env = {
        **os.environ,
        "READINESS_LISTEN": f"127.0.0.1:{listen}",
        "READINESS_STATE": f"sqlite:///{run_dir}/state.db",
    }
    exe = Path(sys.executable).with_name("readiness-exporter")
    argv = [str(exe), "serve", "--config", str(path)] if exe.exists() else []
    argv = argv or [sys.executable, "-m", "exporter", "serve", "--config", str(path)]
    with (run_dir / "daemon.log").open("wb") as log:
        spawned, mono = time.time(), time.monotonic()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        yield Spawned(proc, f"http://127.0.0.1:{listen}", spawned, mono)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(daemon: Spawned, path: str, deadline: float) -> tuple[float, float]:
    """Seconds from spawning until `path` first answered 200 (polled every 10 ms), and the CPU
    seconds the daemon had used by then (what a loaded machine does not inflate)."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(f"{daemon.url}{path}", timeout=2) as response:
                if response.status == 200:
                    seconds = time.monotonic() - daemon.spawned_mono
                    return seconds, cpu_seconds(daemon.proc.pid)
        except (OSError, urllib.error.HTTPError):
            pass
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"serve exited with {daemon.proc.returncode} before {path}")
        if time.monotonic() > end:
            raise RuntimeError(f"{path} did not answer 200 within {deadline:g}s")
        time.sleep(0.01)


def first_round(daemon: Spawned, items: int, deadline: float) -> tuple[float, bytes]:
    """Seconds from spawning until the last item's first run ended, from the daemon's own
    timestamps (last run + duration), once every item has run; and that /metrics body."""
    end = time.monotonic() + deadline
    pause = 0.1 if items <= 1_000 else 0.5 if items <= 10_000 else 2.0
    while True:
        body = metrics(daemon.url)
        if runs_total(body) >= items:
            ends = dict(samples(body, "readiness_item_last_run_timestamp_seconds"))
            if len(ends) >= items:
                durations = dict(samples(body, "readiness_item_probe_duration_seconds"))
                return max(ends[k] + durations[k] for k in ends) - daemon.spawned, body
        if daemon.proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"{items} items: first round incomplete ({runs_total(body):g} runs)")
        time.sleep(pause)


def steady(daemon: Spawned, window: float) -> dict[str, float]:
    """Runs, CPU seconds and lag buckets over `window` seconds of the daemon left alone (one
    scrape at each end, as Prometheus would)."""
    before = metrics(daemon.url)
    cpu0, wall0 = cpu_seconds(daemon.proc.pid), time.monotonic()
    time.sleep(window)
    cpu, wall = cpu_seconds(daemon.proc.pid) - cpu0, time.monotonic() - wall0
    after = metrics(daemon.url)
    start, end = lag_buckets(before), lag_buckets(after)
    lag = {le: end[le] - start.get(le, 0.0) for le in end}
    return {
        "runs": runs_total(after) - runs_total(before),
        "cpu_s": cpu,
        "wall_s": wall,
        "lag_runs": lag[float("inf")],
        "lag_p50_s": quantile(0.5, lag),
        "lag_p99_s": quantile(0.99, lag),
    }


def not_passing(body: bytes) -> dict[str, int]:
    """Why items did not pass (a loaded loopback refuses or times out)."""
    return dict(
        Counter(
            re.sub(r'.*reason="([^"]+)".*', r"\1", labels)
            for labels, _ in samples(body, "readiness_item_failure_reason")
        )
    )


# --- 1. probes per CPU-second of the whole daemon ----------------------------------------------
def throughput(workdir: Path, kind: str, nginx_port: int, plan: DaemonPlan) -> dict[str, Any]:
    items = plan.throughput_items
    config = config_yaml(kind, items, 1.0, nginx_port)
    with serve(workdir / f"throughput-{kind}", config) as daemon:
        wait_for(daemon, "/health/ready", plan.deadline)
        first_round(daemon, items, plan.deadline)
        # One more interval: the first round's burst is not the steady state.
        time.sleep(1.0)
        figures = steady(daemon, plan.throughput_window)
        body = metrics(daemon.url)
        figures["rss_mb"] = rss_mb(daemon.proc.pid)
    passing = sum(v for _, v in samples(body, "readiness_item_passing"))
    if passing < items:
        print(f"  {kind}: {items - passing:g} not passing: {not_passing(body)}", file=sys.stderr)
    return {
        "items": items,
        "probes": figures["runs"],
        "wall_s": figures["wall_s"],
        "cpu_s": figures["cpu_s"],
        "probes_per_s": figures["runs"] / figures["wall_s"],
        "probes_per_cpu_s": figures["runs"] / max(figures["cpu_s"], 1e-9),
        "passing": passing,
        "rss_mb": figures["rss_mb"],
    }


# --- 2. one daemon at scale ----------------------------------------------------------------------
def scrape_timings(url: str, count: int, encoding: str | None) -> list[float]:
    headers = {"Accept-Encoding": encoding} if encoding else {"Accept-Encoding": "identity"}
    timings = []
    for _ in range(count):
        seconds, _, head = get(f"{url}/metrics", headers)
        if encoding and head.get("content-encoding") != encoding:
            raise RuntimeError(f"/metrics ignored Accept-Encoding: {encoding}")
        timings.append(seconds)
    return timings


def at_scale(workdir: Path, items: int, nginx_port: int, plan: DaemonPlan) -> dict[str, Any]:
    config = config_yaml("tcp", items, plan.interval, nginx_port)
    with serve(workdir / f"scale-{items}", config) as daemon:
        live_s, live_cpu_s = wait_for(daemon, "/health/live", plan.deadline)
        ready_s, ready_cpu_s = wait_for(daemon, "/health/ready", plan.deadline)
        round_s, body = first_round(daemon, items, plan.deadline)
        # Every item ran once at startup; its next run is on its phase grid at least half an
        # interval later. From then on runs are spread evenly: the steady state.
        time.sleep(max(0.0, daemon.spawned_mono + plan.interval / 2 + 2 - time.monotonic()))
        scrapes = plan.scrapes if items <= 10_000 else max(plan.scrapes // 3, 5)
        plain = scrape_timings(daemon.url, scrapes, None)
        zipped = scrape_timings(daemon.url, scrapes, "gzip")
        accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
        _, om, head = get(f"{daemon.url}/metrics", accept)
        if not (
            head["content-type"].startswith("application/openmetrics-text")
            and om.endswith(b"# EOF\n")
        ):
            raise RuntimeError("OpenMetrics negotiation broke")
        window = steady(daemon, plan.window)
        rss = rss_mb(daemon.proc.pid)
    passing = sum(v for _, v in samples(body, "readiness_item_passing"))
    row = {
        "items": items,
        "interval_s": plan.interval,
        "live_s": live_s,
        "ready_s": ready_s,
        "live_cpu_s": live_cpu_s,
        "ready_cpu_s": ready_cpu_s,
        "first_round_s": round_s,
        "passing": passing,
        "rss_mb": rss,
        "metrics_bytes": len(body),
        "metrics_p50_ms": 1000 * statistics.median(plain),
        "metrics_p99_ms": 1000 * percentile(plain, 0.99),
        "gzip_p50_ms": 1000 * statistics.median(zipped),
        "gzip_p99_ms": 1000 * percentile(zipped, 0.99),
        "lag_runs": window["lag_runs"],
        "lag_p50_s": window["lag_p50_s"],
        "lag_p99_s": window["lag_p99_s"],
        "cpu_ms_per_run": 1000 * window["cpu_s"] / max(window["runs"], 1),
        "cpu_percent": 100 * window["cpu_s"] / window["wall_s"],
        "load": load_average(),
    }
    if passing < items:
        print(f"  {items} items: not passing: {not_passing(body)}", file=sys.stderr)
    return row


def markdown(
    throughput_rows: dict[str, Any], scale_rows: list[dict[str, Any]], concurrency: int
) -> list[str]:
    lines: list[str] = []
    if throughput_rows:
        lines += [
            "### The whole daemon vs blackbox_exporter (new connection per probe)",
            "",
            "| probe | side | probes | probes/s | CPU s | probes per CPU-second "
            "| ours / blackbox |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for kind, row in throughput_rows.items():
            for side, name, ratio in (
                ("blackbox", f"blackbox_exporter (wrk -c{concurrency})", ""),
                ("ours", f"`serve`, {row['ours']['items']} items every 1s", row["ratio"]),
            ):
                f = row[side]
                lines.append(
                    f"| {kind} | {name} | {f['probes']:,.0f} | {f['probes_per_s']:,.0f} | "
                    f"{f['cpu_s']:.2f} | {f['probes_per_cpu_s']:,.0f} | "
                    + (f"**{ratio:.2f}** |" if ratio else " |")
                )
        lines.append("")
    if scale_rows:
        lines += [
            "### One daemon at scale (`tcp` items against loopback nginx)",
            "",
            "| items | interval | /health/live (CPU) | /health/ready (CPU) | first full round "
            "| passing | "
            "RSS | /metrics size | /metrics p50 / p99 | gzip p50 / p99 | lag p50 / p99 | "
            "runs in window | CPU per run | CPU | load |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in scale_rows:
            lines.append(
                f"| {r['items']:,} | {r['interval_s']:g}s "
                f"| {r['live_s']:.2f} s ({r['live_cpu_s']:.2f}) "
                f"| {r['ready_s']:.2f} s ({r['ready_cpu_s']:.2f}) "
                f"| {r['first_round_s']:.2f} s | {r['passing']:,.0f} "
                f"| {r['rss_mb']:.0f} MB | {r['metrics_bytes'] / 1024:,.0f} KiB "
                f"| {r['metrics_p50_ms']:.1f} / {r['metrics_p99_ms']:.1f} ms "
                f"| {r['gzip_p50_ms']:.1f} / {r['gzip_p99_ms']:.1f} ms "
                f"| {r['lag_p50_s'] * 1000:.1f} / {r['lag_p99_s'] * 1000:.1f} ms "
                f"| {r['lag_runs']:,.0f} | {r['cpu_ms_per_run']:.2f} ms "
                f"| {r['cpu_percent']:.1f}% | {r['load']:.1f} |"
            )
        lines.append("")
    return lines
