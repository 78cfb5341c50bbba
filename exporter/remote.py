"""A running daemon asked over its API, for the CLI: `check --url` runs the checklists there
(POST /api/v1/runs) and reads back their state (/status) to judge it with the one rule, here;
`run` wraps a job and reports it to a `ping` item (POST /api/v1/pings)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, BinaryIO

import aiohttp

from exporter.config import Config
from exporter.reasons import Reason
from exporter.results import Attestation, ItemKey, ItemState, Result

TIMEOUT = 120.0
"""Seconds a remote run may take: a checklist's probes, each within its own timeout."""
PING_TIMEOUT = 10.0
"""Seconds a ping may take: a job waits no longer for its monitoring."""
OUTPUT_BYTES = 4096
"""The tail of a job's output a ping carries (the daemon keeps as much)."""


class RemoteError(Exception):
    """The daemon could not be asked, or refused: `code` is the CLI's exit code (2 for a
    token or a name the daemon refuses, 3 for a daemon out of reach)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


async def request(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with session.request(method, url, json=body, headers=headers) as response:
            if response.status in (200, 201, 202):
                return await response.json()
            text = (await response.text())[:300]
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise RemoteError(
            f"{url}: cannot reach the daemon ({exc or type(exc).__name__})", 3
        ) from None
    except ValueError as exc:  # a 2xx whose body is not JSON: not the daemon's API
        message = f"{url}: the answer is not JSON ({exc}): is this the daemon?"
        raise RemoteError(message, 3) from None
    hint = {
        401: ": give an API token in the environment (READINESS_TOKEN, or --token-env NAME)",
        403: ": the token needs the attest role",
    }.get(response.status, "")
    code = 2 if response.status in (401, 403, 404, 422) else 3
    raise RemoteError(f"{url}: HTTP {response.status} {text}{hint}", code)


async def run_checklists(base: str, token: str | None, checklists: list[str]) -> dict[str, Any]:
    """Runs each checklist now on the daemon at `base`, then returns its /status document."""
    base = base.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(
            *(
                request(session, "POST", f"{base}/api/v1/runs", token, {"checklist": name})
                for name in checklists
            )
        )
        status: dict[str, Any] = await request(session, "GET", f"{base}/status", token)
        return status


def states(config: Config, status: Mapping[str, Any], now: float) -> dict[ItemKey, ItemState]:
    """The item states a /status document shows, for judging against the local config (the
    same file the daemon runs). A recurring item that never succeeded keeps the daemon's due
    time; an attestation counts as current when the daemon says so."""
    try:
        return _states(config, status, now)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # Another version's document, or not a daemon's at all: say so, no traceback.
        raise RemoteError(
            f"the daemon's /status is not a document this version reads"
            f" ({type(exc).__name__}: {exc}): are both the same version?",
            3,
        ) from None


def _states(config: Config, status: Mapping[str, Any], now: float) -> dict[ItemKey, ItemState]:
    out: dict[ItemKey, ItemState] = {}
    items = {(c.name, i.id): i for c in config.checklists for s in c.sections for i in s.items}
    for checklist in status.get("checklists", ()):
        name = checklist["name"]  # every checklist is named: check --url reads the names
        for section in checklist.get("sections", ()):
            for doc in section.get("items", ()):
                item = items.get((name, doc["id"]))
                if item is None:
                    continue
                if waiting := doc.get("unconfigured"):
                    # The daemon's environment decides what is set (check --url loads the
                    # config without marking any item unconfigured).
                    item.needs_variables(tuple(str(name) for name in waiting))
                result = None
                if doc.get("last_run"):
                    result = Result(
                        bool(doc["passing"]),
                        Reason(doc["reason"]),
                        _ts(doc["last_run"]) or now,
                        float(doc.get("duration_seconds") or 0.0),
                        dict(doc.get("facts") or {}),
                        tuple(doc.get("failed") or ()),
                        str(doc.get("message") or ""),
                    )
                last_success = _ts(doc.get("last_success"))
                first_seen = now
                due = _ts(doc.get("due"))
                if item.every is not None and last_success is None and due is not None:
                    first_seen = due - item.every.total_seconds()
                attestation = None
                if (attested := doc.get("attestation")) is not None:
                    attestation = Attestation(
                        name,
                        item.id,
                        str(attested["by"]),
                        _ts(attested["at"]) or now,
                        item.fingerprint if attested.get("current") else "",
                        str(attested.get("note") or ""),
                    )
                key = ItemKey(name, item.id)
                out[key] = ItemState(result, last_success, first_seen, attestation)
    return out


def _ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


async def _ping(base: str, token: str | None, body: dict[str, Any]) -> None:
    timeout = aiohttp.ClientTimeout(total=PING_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await request(session, "POST", f"{base.rstrip('/')}/api/v1/pings", token, body)


def report(base: str, token: str | None, body: dict[str, Any]) -> str | None:
    """Sends one ping; what went wrong, or None. A job is never held up by its monitoring."""
    try:
        asyncio.run(_ping(base, token, body))
    except RemoteError as exc:
        return str(exc)
    return None


def run_job(
    base: str, token: str | None, checklist: str, item: str, argv: list[str], out: BinaryIO
) -> tuple[int, list[str]]:
    """`readiness-exporter run`: pings `start`, runs `argv` (its output passed through to
    `out`, stdout and stderr merged, the last 4 KiB kept), then pings `success` or `fail` with
    the exit code, the duration and that tail. Returns the command's exit code (126/127 when
    it cannot be started, 128+N when killed by signal N) and the pings that did not arrive."""
    problems: list[str] = []
    scope = {"checklist": checklist, "item": item}
    if (problem := report(base, token, {**scope, "status": "start"})) is not None:
        problems.append(problem)
    started = time.monotonic()
    tail = bytearray()
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        tail += f"{argv[0]}: cannot run: {exc.strerror or exc}\n".encode()
    else:
        assert process.stdout is not None
        # Stopping the wrapper (cron's kill, Ctrl-C, a CI timeout) stops the job; it then
        # reports as killed by that signal.
        forward = {
            sig: signal.signal(sig, lambda n, _: process.send_signal(n))
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            while chunk := os.read(process.stdout.fileno(), 65536):
                out.write(chunk)
                out.flush()
                tail += chunk
                del tail[: max(0, len(tail) - OUTPUT_BYTES)]
            code = process.wait()
        finally:
            process.stdout.close()
            for sig, previous in forward.items():
                signal.signal(sig, previous)
        if code < 0:
            code = 128 - code
    body = {
        **scope,
        "status": "success" if code == 0 else "fail",
        "exit_code": code,
        "duration": round(time.monotonic() - started, 6),
        "output": tail.decode("utf-8", "replace"),
    }
    if (problem := report(base, token, body)) is not None:
        problems.append(problem)
    return code, problems
