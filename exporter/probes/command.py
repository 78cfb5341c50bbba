"""`command`: run a program (no shell) and report its exit code, output and duration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from exporter.probes.base import Facts, ProbeContext, ProbeFailure, ProbeSpec
from exporter.reasons import Reason
from exporter.redact import SECRET_NAME

KIND = "command"
DEFAULT_EXPECT: tuple[str, ...] = ("exit_code == 0",)
FACTS: tuple[str, ...] = (
    "exit_code",
    "stdout",
    "stderr",
    "stdout_lines",
    "stdout_truncated",
    "stderr_truncated",
    "duration",
)

_CHUNK = 64 * 1024
# All a command gets of the daemon's environment unless its spec says `inherit_env: true`:
# least privilege, so a check never sees the exporter's tokens or cloud credentials.
PASSED_ENV = ("PATH", "LANG", "HOME")


class Spec(ProbeSpec):
    argv: list[str] = Field(min_length=1, description="Program and arguments; run without a shell")
    cwd: str | None = None
    env: dict[str, str] = Field(
        default_factory=dict, description="Set for the command, besides PATH, LANG and HOME"
    )
    inherit_env: bool = Field(
        default=False, description="Pass the exporter's whole environment (it may hold secrets)"
    )
    max_output_bytes: int = Field(default=4096, ge=0, description="Kept of stdout and of stderr")

    def secrets(self, environ: Mapping[str, str]) -> set[str]:
        found = super().secrets(environ)
        if self.inherit_env:
            # A command given the whole environment may print any of it.
            found |= {v for k, v in environ.items() if SECRET_NAME.search(k)}
        return found


@dataclass
class _Output:
    kept: bytes
    total_bytes: int
    lines: int

    def text(self) -> str:
        # A cap may cut a UTF-8 sequence in half, and commands print what they like.
        return self.kept.decode("utf-8", errors="replace")


async def probe(spec: Spec, ctx: ProbeContext) -> Facts:
    started = ctx.clock.monotonic()
    proc = await _start(spec)
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        # Drain both pipes while waiting, so a chatty command never blocks on a full pipe.
        stdout, stderr, exit_code = await asyncio.gather(
            _read_capped(proc.stdout, spec.max_output_bytes),
            _read_capped(proc.stderr, spec.max_output_bytes),
            proc.wait(),
        )
    except BaseException:
        # Cancelled (the runner's timeout) or failed: nothing the command started may outlive it.
        _kill_group(proc.pid)
        await proc.wait()
        raise
    return {
        "exit_code": exit_code,
        "stdout": stdout.text(),
        "stderr": stderr.text(),
        "stdout_lines": stdout.lines,
        "stdout_truncated": stdout.total_bytes > len(stdout.kept),
        "stderr_truncated": stderr.total_bytes > len(stderr.kept),
        "duration": ctx.clock.monotonic() - started,
    }


async def _start(spec: Spec) -> asyncio.subprocess.Process:
    program = spec.argv[0]
    try:
        return await asyncio.create_subprocess_exec(
            *spec.argv,
            cwd=spec.cwd,
            env={**_inherited(spec.inherit_env), **spec.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Its own process group, so a timeout can kill the command and all its children.
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if spec.cwd is not None and exc.filename == spec.cwd:
            raise ProbeFailure(Reason.ERROR, f"working directory not found: {spec.cwd}") from exc
        raise ProbeFailure(Reason.ERROR, f"command not found: {program}") from exc
    except PermissionError as exc:
        raise ProbeFailure(Reason.ERROR, f"command not executable: {program}") from exc
    except OSError as exc:  # e.g. a script without a #! line
        raise ProbeFailure(Reason.ERROR, f"cannot run {program}: {exc.strerror}") from exc


def _inherited(everything: bool) -> dict[str, str]:
    if everything:
        return dict(os.environ)
    return {name: os.environ[name] for name in PASSED_ENV if name in os.environ}


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> _Output:
    kept = bytearray()
    total = lines = 0
    last = b"\n"
    while chunk := await stream.read(_CHUNK):
        total += len(chunk)
        lines += chunk.count(b"\n")
        last = chunk[-1:]
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
    if last != b"\n":
        lines += 1  # a last line without a newline still counts
    return _Output(bytes(kept), total, lines)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has already exited
        os.killpg(pgid, signal.SIGKILL)
