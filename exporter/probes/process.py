"""`process`: whether a process runs, found by name or by its pidfile, and what it uses."""

from __future__ import annotations

import asyncio
import os
from typing import Self

import psutil
from pydantic import Field, model_validator

from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec
from exporter.reasons import Reason

KIND = "process"
DEFAULT_EXPECT: tuple[str, ...] = ("running == true",)
FACTS: tuple[str, ...] = ("running", "count", "pids", "user", "rss", "uptime")

MAX_PIDS = 20  # keeps the evidence readable when a name matches a whole worker pool


class Spec(ProbeSpec):
    name: str | None = Field(
        default=None, min_length=1, description="Process name or basename of argv[0], exact"
    )
    pidfile: str | None = Field(default=None, min_length=1, description="Path of a pidfile")

    @model_validator(mode="after")
    def _name_xor_pidfile(self) -> Self:
        if (self.name is None) == (self.pidfile is None):
            raise ValueError("give exactly one of `name` (process name) or `pidfile` (path)")
        return self


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    now = ctx.clock.now()
    # psutil reads /proc synchronously and a pidfile may sit on a hung mount.
    return await asyncio.to_thread(_measure, spec, now)


def _measure(spec: Spec, now: float) -> Facts:
    if spec.pidfile is not None:
        return _facts(_by_pidfile(os.path.expanduser(spec.pidfile)), now)
    assert spec.name is not None  # the validator guarantees one of the two
    return _facts(_by_name(spec.name), now)


def _not_running() -> Facts:
    return {"running": False, "count": 0, "pids": []}


def _by_name(name: str) -> list[psutil.Process]:
    found = []
    # process_iter skips processes that exit mid-scan and gives None where access is denied.
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue  # exited, waiting for its parent to reap it: not running
        argv = proc.info["cmdline"] or []
        if proc.info["name"] == name or (argv and os.path.basename(argv[0]) == name):
            found.append(proc)
    return found


def _by_pidfile(pidfile: str) -> list[psutil.Process]:
    try:
        with open(pidfile, encoding="utf-8", errors="replace") as handle:
            text = handle.read(64).strip()
    except FileNotFoundError:
        return []  # daemons remove their pidfile on a clean exit
    except OSError as exc:
        raise ProbeFailure(
            Reason.ERROR, f"cannot read pidfile {pidfile}: {exc.strerror}", _not_running()
        ) from exc
    if not text.isdigit() or int(text) <= 0:
        raise ProbeFailure(
            Reason.ERROR, f"pidfile {pidfile} does not hold a pid: {text!r}", _not_running()
        )
    try:
        proc = psutil.Process(int(text))
        zombie = proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # a stale pidfile left by a crash
        return []
    return [] if zombie else [proc]


def _facts(processes: list[psutil.Process], now: float) -> Facts:
    details = []
    for proc in processes:
        try:
            details.append(proc.as_dict(["pid", "create_time", "username", "memory_info"]))
        except psutil.NoSuchProcess:
            continue  # exited since it was found
    if not details:
        return _not_running()
    details.sort(key=lambda d: d["create_time"] or now)
    oldest = details[0]
    return {
        "running": True,
        "count": len(details),
        "pids": [str(d["pid"]) for d in details[:MAX_PIDS]],
        "user": oldest["username"],
        "rss": sum(d["memory_info"].rss for d in details if d["memory_info"] is not None),
        "uptime": now - oldest["create_time"] if oldest["create_time"] is not None else None,
    }
