"""Our probe engine under load: one process running one real item N times at a fixed
concurrency through exporter.runner.Runner, printing JSON with its own CPU accounting.

    python bench/engine.py --kind http --target http://127.0.0.1:8080/health -n 5000 -c 16

Only the probe loop is measured (not the interpreter start or the imports), as blackbox_exporter
is measured only while wrk drives it. The event loop is the daemon's: uvloop when installed (as
uvicorn's loop="auto" picks for `serve`), else asyncio's; --loop asyncio forces the latter."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from exporter.clock import SystemClock
from exporter.loader import parse_config
from exporter.runner import Runner

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process and of its children it waited for, from /proc/PID/stat
    (fields 14 to 17): `serve` loads its config in a child (exporter/forkload.py)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICKS


def item_yaml(kind: str, target: str) -> str:
    if kind == "http":
        probe = f"http: {{url: {json.dumps(target)}}}"
        expect = "[status == 200]"
    else:
        host, port = target.rsplit(":", 1)
        probe = f"tcp: {{host: {json.dumps(host)}, port: {port}}}"
        expect = "[connected == true]"
    return f"""
checklists:
  - name: bench
    sections:
      - name: engine
        items:
          - id: target
            title: the benchmark target
            {probe}
            expect: {expect}
"""


async def drive(kind: str, target: str, n: int, concurrency: int) -> dict[str, object]:
    item = parse_config(item_yaml(kind, target)).config.checklists[0].sections[0].items[0]
    runner = Runner(concurrency, SystemClock())
    remaining = n
    failures = 0

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            result = await runner.run(item, 5.0)
            failures += not result.passing

    # Warm-up: creates the shared client and touches every code path once.
    for _ in range(concurrency):
        await runner.run(item, 5.0)
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = cpu_seconds() - cpu0, time.monotonic() - wall0
    await runner.resources.aclose()
    return {"probes": n, "failures": failures, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["http", "tcp"], required=True)
    parser.add_argument("--target", required=True, help="URL (http) or host:port (tcp)")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--loop", choices=["auto", "asyncio"], default="auto")
    args = parser.parse_args()
    loop = "asyncio"
    if args.loop == "auto":
        try:
            import uvloop

            uvloop.install()
            loop = "uvloop"
        except ImportError:
            pass
    figures = asyncio.run(drive(args.kind, args.target, args.n, args.concurrency))
    print(json.dumps({**figures, "loop": loop}))


if __name__ == "__main__":
    main()
