"""The benchmark: our probe engine against blackbox_exporter, and one daemon at scale.

    python bench/run.py            # the full run (~7 minutes); rewrites bench/README.md's figures
    python bench/run.py --quick    # small N and short intervals, seconds; prints, writes nothing

Needs nginx, wrk and prometheus-blackbox-exporter (Debian packages of those names)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from engine import cpu_seconds  # noqa: E402
from targets import blackbox, free_port, need, nginx, wait_http  # noqa: E402

README = BENCH / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


@dataclass(frozen=True)
class Plan:
    concurrency: int
    engine_seconds: float
    """How long wrk drives blackbox_exporter; our engine runs the same number of probes."""
    sizes: tuple[int, ...]
    intervals: tuple[tuple[str, float, float], ...]
    """(label, interval seconds, steady-state window seconds)."""
    scrapes: int


FULL = Plan(16, 10.0, (100, 1_000, 10_000), (("1m", 60.0, 75.0), ("10s", 10.0, 25.0)), 50)
QUICK = Plan(4, 1.0, (20,), (("2s", 2.0, 3.0), ("1s", 1.0, 2.0)), 10)


# --- 1. probe engine vs blackbox_exporter ---------------------------------------------------
def wrk(url: str, concurrency: int, seconds: float) -> int:
    """Requests wrk completed against `url`."""
    out = subprocess.run(
        [need("wrk"), "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    if match is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk against {url} failed:\n{out}")
    return int(match.group(1))


def probe_succeeds(url: str) -> None:
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    if "probe_success 1" not in body:
        raise RuntimeError(
            f"blackbox_exporter's probe fails, the comparison would be void:\n{body}"
        )


def blackbox_side(port: int, pid: int, module: str, target: str, plan: Plan) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/probe?module={module}&target={target}"
    probe_succeeds(url)
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    probes = wrk(url, plan.concurrency, plan.engine_seconds)
    cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - wall0
    return {"probes": probes, "wall_s": wall, "cpu_s": cpu}


def our_side(kind: str, target: str, probes: int, plan: Plan, loop: str) -> dict[str, Any]:
    argv = [sys.executable, str(BENCH / "engine.py"), "--kind", kind, "--target", target]
    argv += ["--loop", loop]
    out = subprocess.run(
        [*argv, "-n", str(probes), "-c", str(plan.concurrency)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    figures: dict[str, Any] = json.loads(out)
    if figures["failures"]:
        raise RuntimeError(f"our {kind} probe failed {figures['failures']} times against {target}")
    return figures


def rates(side: dict[str, Any]) -> dict[str, Any]:
    return {
        **side,
        "probes_per_s": side["probes"] / side["wall_s"],
        "probes_per_cpu_s": side["probes"] / max(side["cpu_s"], 1e-9),
    }


def engine_comparison(workdir: Path, nginx_port: int, plan: Plan) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with blackbox(workdir) as (proc, port):
        for kind, module, target in (
            ("http", "http_2xx", f"http://127.0.0.1:{nginx_port}/health"),
            ("tcp", "tcp_connect", f"127.0.0.1:{nginx_port}"),
        ):
            theirs = rates(blackbox_side(port, proc.pid, module, target, plan))
            ours = rates(our_side(kind, target, int(theirs["probes"]), plan, "auto"))
            plain = rates(our_side(kind, target, int(theirs["probes"]), plan, "asyncio"))
            figures[kind] = {
                "blackbox": theirs,
                "ours": ours,
                "ours_asyncio": plain,
                "ratio": ours["probes_per_cpu_s"] / theirs["probes_per_cpu_s"],
                "ratio_asyncio": plain["probes_per_cpu_s"] / theirs["probes_per_cpu_s"],
            }
    return figures


# --- 2. one daemon at scale -------------------------------------------------------------------
KINDS = ("http", "tcp", "file", "disk")


def scale_config(items: int, interval: float, nginx_port: int, workdir: Path) -> str:
    """`items` items, a mix of kinds against loopback targets, 100 per section, 1,000 per
    checklist; every 10th is recurring (every: 30d), every 7th critical."""
    marker = workdir / "marker"
    marker.write_text("present")
    probes = {
        "http": f'http: {{url: "http://127.0.0.1:{nginx_port}/health"}}',
        "tcp": f"tcp: {{host: 127.0.0.1, port: {nginx_port}}}",
        "file": f'file: {{path: "{marker}"}}',
        "disk": f'disk: {{path: "{workdir}"}}',
    }
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
        kind = KINDS[n % len(KINDS)]
        lines += [f"          - id: item-{n}", f"            title: Item {n} ({kind})"]
        if n % 7 == 0:
            lines.append("            severity: critical")
        if n % 10 == 0:
            lines.append("            every: 30d")
        lines.append(f"            {probes[kind]}")
    return "\n".join(lines) + "\n"


def scrape(url: str, accept: str | None = None) -> tuple[float, bytes, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        content_type = response.headers.get("Content-Type", "")
    return time.perf_counter() - started, body, content_type


def samples(body: bytes, name: str) -> Iterator[tuple[str, float]]:
    """(labels text, value) of every sample of `name` (the exposition is simple enough)."""
    prefix = name.encode()
    for line in body.splitlines():
        if line.startswith(prefix) and line[len(prefix) : len(prefix) + 1] in (b"{", b" "):
            head, _, value = line.rpartition(b" ")
            yield head[len(prefix) :].decode(), float(value)


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
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_daemon(
    workdir: Path, items: int, label: str, interval: float, window: float, plan: Plan, port: int
) -> dict[str, Any]:
    run_dir = workdir / f"scale-{items}-{label}"
    run_dir.mkdir()
    config = run_dir / "config.yaml"
    config.write_text(scale_config(items, interval, port, run_dir))
    listen = free_port()
    url = f"http://127.0.0.1:{listen}"
    env = {
        **os.environ,
        "READINESS_LISTEN": f"127.0.0.1:{listen}",
        "READINESS_STATE": f"sqlite:///{run_dir}/state.db",
    }
    argv = [sys.executable, "-m", "exporter", "serve", "--config", str(config)]
    spawned = time.time()
    with contextlib.ExitStack() as stack:
        log = (run_dir / "daemon.log").open("wb")
        stack.callback(log.close)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        stack.callback(lambda: (proc.terminate(), proc.wait(timeout=30)))
        wait_http(f"{url}/health/live", timeout=60)
        deadline = time.monotonic() + 120
        while True:
            _, body, _ = scrape(f"{url}/metrics")
            ran = sum(1 for _ in samples(body, "readiness_item_last_run_timestamp_seconds"))
            if ran >= items:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{items} items: first round incomplete ({ran} ran)")
            time.sleep(0.25)
        ends = dict(samples(body, "readiness_item_last_run_timestamp_seconds"))
        durations = dict(samples(body, "readiness_item_probe_duration_seconds"))
        passing = sum(v for _, v in samples(body, "readiness_item_passing"))
        first_round = max(ends[k] + durations[k] for k in ends) - spawned
        rss_first = rss_mb(proc.pid)

        timings = [scrape(f"{url}/metrics")[0] for _ in range(plan.scrapes)]
        _, om, om_type = scrape(f"{url}/metrics", "application/openmetrics-text; version=1.0.0")
        if not (om_type.startswith("application/openmetrics-text") and om.endswith(b"# EOF\n")):
            raise RuntimeError("OpenMetrics negotiation broke")

        _, before, _ = scrape(f"{url}/metrics")
        cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window)
        cpu, wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - wall0
        _, after, _ = scrape(f"{url}/metrics")
        start, end = lag_buckets(before), lag_buckets(after)
        steady = {le: end[le] - start.get(le, 0.0) for le in end}
        row = {
            "items": items,
            "interval": label,
            "passing": passing,
            "startup_s": first_round,
            "rss_mb": max(rss_first, rss_mb(proc.pid)),
            "metrics_bytes": len(body),
            "metrics_p50_ms": 1000 * statistics.median(timings),
            "metrics_p99_ms": 1000 * percentile(timings, 0.99),
            "lag_runs": steady[float("inf")],
            "lag_p50_s": quantile(0.5, steady),
            "lag_p99_s": quantile(0.99, steady),
            "cpu_percent": 100 * cpu / wall,
        }
        print(json.dumps(row), file=sys.stderr, flush=True)
        if passing < items:
            print(failures(body), file=sys.stderr, flush=True)
        return row


def failures(body: bytes) -> str:
    """Why items did not pass in the first round (a loaded loopback refuses or times out)."""
    reasons = Counter(
        re.sub(r'.*reason="([^"]+)".*', r"\1", labels)
        for labels, _ in samples(body, "readiness_item_failure_reason")
    )
    return f"  not passing after the first round: {dict(reasons)}"


def scale(workdir: Path, nginx_port: int, plan: Plan) -> list[dict[str, Any]]:
    return [
        one_daemon(workdir, items, label, interval, window, plan, nginx_port)
        for items in plan.sizes
        for label, interval, window in plan.intervals
    ]


# --- report ---------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    def found(argv: list[str], pattern: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        match = re.search(pattern, done.stdout + done.stderr)
        return match.group(1) if match else "unknown"

    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "readiness-exporter": version("readiness-exporter"),
        "aiohttp": version("aiohttp"),
        "uvloop": _maybe_version("uvloop"),
        "nginx": found([need("nginx"), "-v"], r"nginx/(\S+)"),
        "wrk": found([need("wrk"), "-v"], r"wrk (\S+)"),
        "blackbox_exporter": found(
            [need("prometheus-blackbox-exporter"), "--version"], r"version (\S+)"
        ),
    }


def _maybe_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    memory = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    return (
        f"{os.cpu_count()} CPUs ({model.group(1) if model else 'unknown'}), "
        f"{int(memory.group(1)) // 1024 if memory else '?'} MiB RAM, {platform.platform()}"
    )


def markdown(figures: dict[str, Any], plan: Plan) -> str:
    lines = [
        f"Measured {figures['when']} on {figures['machine']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in figures["versions"].items()) + ".",
        "",
        f"Command: `python bench/run.py` (concurrency {plan.concurrency}, wrk for "
        f"{plan.engine_seconds:g}s per probe kind; our engine runs as many probes as "
        "blackbox_exporter answered).",
        "",
        "### Probe engine vs blackbox_exporter (new connection per probe)",
        "",
        "| probe | side | probes | probes/s | CPU s | probes per CPU-second | ours / blackbox |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind, row in figures["engine"].items():
        for side, ratio in (
            ("blackbox", ""),
            ("ours", f"**{row['ratio']:.2f}**"),
            ("ours_asyncio", f"{row['ratio_asyncio']:.2f}"),
        ):
            f = row[side]
            name = "blackbox_exporter" if side == "blackbox" else f"ours ({f['loop']} loop)"
            lines.append(
                f"| {kind} | {name} | {f['probes']:,} | {f['probes_per_s']:,.0f} | "
                f"{f['cpu_s']:.2f} | {f['probes_per_cpu_s']:,.0f} | {ratio} |"
            )
    lines += [
        "",
        "### One daemon at scale (mixed http/tcp/file/disk items against loopback)",
        "",
        "| items | interval | first full round | passing | RSS | /metrics size | /metrics p50 | "
        "/metrics p99 | lag p50 | lag p99 | runs in window | CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in figures["scale"]:
        lines.append(
            f"| {r['items']:,} | {r['interval']} | {r['startup_s']:.2f} s | {r['passing']:,.0f} "
            f"| {r['rss_mb']:.0f} MB "
            f"| {r['metrics_bytes'] / 1024:,.0f} KiB | {r['metrics_p50_ms']:.1f} ms "
            f"| {r['metrics_p99_ms']:.1f} ms | {r['lag_p50_s'] * 1000:.1f} ms "
            f"| {r['lag_p99_s'] * 1000:.1f} ms | {r['lag_runs']:,.0f} | {r['cpu_percent']:.1f}% |"
        )
    return "\n".join(lines)


def record(text: str) -> None:
    readme = README.read_text()
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, seconds; writes nothing")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--only", choices=["engine", "scale"], help="one part (writes nothing)")
    parser.add_argument("--sizes", help="comma-separated item counts (writes nothing)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan = replace(plan, sizes=tuple(int(n) for n in args.sizes.split(",")))
    partial = args.quick or args.only or args.sizes
    with tempfile.TemporaryDirectory(prefix="readiness-bench-") as tmp:
        workdir = Path(tmp)
        with nginx(workdir) as (_, port):
            figures = {
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": machine(),
                "versions": versions(),
                "engine": {} if args.only == "scale" else engine_comparison(workdir, port, plan),
                "scale": [] if args.only == "engine" else scale(workdir, port, plan),
            }
    text = markdown(figures, plan)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not partial:
        record(text)


if __name__ == "__main__":
    main()
