"""The benchmark: our probe engine and our whole daemon against blackbox_exporter, and one
daemon at 100 to 50,000 items.

    python bench/run.py            # the full run (~6 minutes); rewrites bench/README.md's figures
    python bench/run.py --quick    # small N and short intervals, seconds; prints, writes nothing

Needs nginx, wrk and prometheus-blackbox-exporter (Debian packages of those names)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import daemon  # noqa: E402
from daemon import DAEMON_FULL, DAEMON_QUICK, DaemonPlan  # noqa: E402
from engine import cpu_seconds  # noqa: E402
from targets import blackbox, need, nginx  # noqa: E402

README = BENCH / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


@dataclass(frozen=True)
class Plan:
    concurrency: int
    engine_seconds: float
    """How long wrk drives blackbox_exporter; our engine runs the same number of probes."""
    daemon: DaemonPlan


FULL = Plan(16, 5.0, DAEMON_FULL)
QUICK = Plan(4, 1.0, DAEMON_QUICK)


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


# --- 2. the whole daemon vs blackbox_exporter, and at scale (bench/daemon.py) -----------------
def daemon_comparison(workdir: Path, nginx_port: int, plan: Plan) -> dict[str, Any]:
    """Each kind as a pair in one run: blackbox_exporter under wrk, then `serve`."""
    figures: dict[str, Any] = {}
    with blackbox(workdir) as (proc, port):
        for kind, module, target in (
            ("http", "http_2xx", f"http://127.0.0.1:{nginx_port}/health"),
            ("tcp", "tcp_connect", f"127.0.0.1:{nginx_port}"),
        ):
            theirs = rates(blackbox_side(port, proc.pid, module, target, plan))
            ours = daemon.throughput(workdir, kind, nginx_port, plan.daemon)
            figures[kind] = {
                "blackbox": theirs,
                "ours": ours,
                "ratio": ours["probes_per_cpu_s"] / theirs["probes_per_cpu_s"],
            }
            print(json.dumps({kind: figures[kind]}), file=sys.stderr, flush=True)
    return figures


def scale(workdir: Path, nginx_port: int, plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for items in plan.daemon.sizes:
        rows.append(daemon.at_scale(workdir, items, nginx_port, plan.daemon))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


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
    lines += ["", f"Load average (1, 5, 15 min) at the start: {', '.join(figures['load'])}.", ""]
    lines += daemon.markdown(figures["daemon"], figures["scale"], plan.concurrency)
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
    parser.add_argument(
        "--only", choices=["engine", "daemon", "scale"], help="one part (writes nothing)"
    )
    parser.add_argument("--sizes", help="comma-separated item counts (writes nothing)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.sizes:
        sizes = tuple(int(n) for n in args.sizes.split(","))
        plan = replace(plan, daemon=replace(plan.daemon, sizes=sizes))
    partial = args.quick or args.only or args.sizes
    with tempfile.TemporaryDirectory(prefix="readiness-bench-") as tmp:
        workdir = Path(tmp)
        with nginx(workdir) as (_, port):
            figures = {
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": machine(),
                "versions": versions(),
                "load": Path("/proc/loadavg").read_text().split()[:3],
            }
            wanted = {args.only} if args.only else {"engine", "daemon", "scale"}
            parts = (
                ("engine", engine_comparison, {}),
                ("daemon", daemon_comparison, {}),
                ("scale", scale, []),
            )
            for name, part, empty in parts:
                figures[name] = part(workdir, port, plan) if name in wanted else empty
    text = markdown(figures, plan)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not partial:
        record(text)


if __name__ == "__main__":
    main()
