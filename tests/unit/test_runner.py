"""The runner's boundary: timeouts, exceptions and ProbeFailure all become results with a reason."""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import fields, replace
from typing import Any

import pytest

from exporter.clock import FixedClock
from exporter.config import Item
from exporter.loader import parse_config
from exporter.probes import PROBES
from exporter.probes.base import MIN_WAIT, ProbeContext, ProbeFailure, classify, socket_failure
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.results import Result
from exporter.runner import Runner, judge, masked, run_result


def item(probe: str, expect: str | None = None, **extra: Any) -> Item:
    lines = [f"            {k}: {v}" for k, v in extra.items()]
    expect_line = f"            expect: {expect}" if expect else ""
    text = "\n".join(
        [
            "checklists:",
            "  - name: app",
            "    sections:",
            "      - name: s",
            "        items:",
            "          - id: x",
            "            title: X",
            f"            {probe}",
            *lines,
            expect_line,
        ]
    )
    return parse_config(text).config.checklists[0].sections[0].items[0]


def test_a_refused_port_that_must_stay_closed_passes() -> None:
    closed = item("tcp: {host: 127.0.0.1, port: 1}", '["connected == false"]')
    result = judge(closed, {"connected": False}, (Reason.CONNECT, "refused"), 1.0, 0.01)
    assert result.passing
    assert result.reason is Reason.OK


def test_a_refused_port_that_must_be_open_fails_with_connect_and_evidence() -> None:
    open_port = item("tcp: {host: 127.0.0.1, port: 1}")
    result = judge(open_port, {"connected": False}, (Reason.CONNECT, "refused"), 1.0, 0.01)
    assert not result.passing
    assert result.reason is Reason.CONNECT
    assert result.failed == ("connected == true (got false)",)
    assert result.message == "refused"


def test_a_failure_without_facts_never_passes_even_with_no_conditions() -> None:
    vacuous = item("http: {url: 'http://127.0.0.1:1/'}", "[]")
    result = judge(vacuous, {}, (Reason.DNS, "no such host"), 1.0, 0.01)
    assert not result.passing
    assert result.reason is Reason.DNS
    assert result.failed == ()  # conditions on facts never measured add nothing


def test_failed_conditions_give_reason_condition() -> None:
    web = item("http: {url: 'http://127.0.0.1:1/'}", '["status == 200"]')
    result = judge(web, {"status": 503}, None, 1.0, 0.01)
    assert result.reason is Reason.CONDITION
    assert result.failed == ("status == 200 (got 503)",)
    assert result.facts["duration"] == 0.01


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError(), Reason.TIMEOUT),
        (socket.gaierror(-2, "Name or service not known"), Reason.DNS),
        (ssl.SSLError(1, "bad handshake"), Reason.TLS),
        (ConnectionRefusedError(111, "refused"), Reason.CONNECT),
        (OSError(113, "No route to host"), Reason.CONNECT),
        (ValueError("bug"), Reason.ERROR),
    ],
)
def test_exceptions_map_to_the_closed_set_of_reasons(exc: BaseException, reason: Reason) -> None:
    assert classify(exc) is reason


def wrapped(cause: BaseException) -> BaseException:
    """An error as client libraries raise it: their own type, the socket's error as the cause."""
    try:
        raise cause
    except BaseException as inner:
        try:
            raise RuntimeError("client library error") from inner
        except RuntimeError as outer:
            return outer


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (socket.gaierror(-2, "Name or service not known"), Reason.DNS),
        (ssl.SSLError(1, "bad handshake"), Reason.TLS),
        (ConnectionRefusedError(111, "refused"), Reason.CONNECT),
    ],
)
def test_one_map_sees_the_socket_error_a_library_wrapped(
    cause: BaseException, reason: Reason
) -> None:
    """What escapes a probe and what a probe reports itself are mapped by the same table."""
    assert classify(wrapped(cause)) is reason
    found = socket_failure(wrapped(cause), "db:5432")
    assert found is not None and found.reason is reason
    assert found.message.startswith("db:5432: ")


def test_the_context_counts_down_to_the_probes_deadline() -> None:
    clock = FixedClock()
    ctx = ProbeContext(timeout=10, clock=clock)
    assert ctx.budget == pytest.approx(9.0)
    assert ctx.remaining() == pytest.approx(9.0)
    clock.advance(4)
    assert ctx.remaining() == pytest.approx(5.0)
    clock.advance(10)
    assert ctx.remaining() == MIN_WAIT


async def test_the_runner_starts_the_probes_clock_when_the_run_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FixedClock()
    seen: list[tuple[float, float]] = []

    async def measure(spec: object, ctx: ProbeContext) -> dict[str, object]:
        seen.append((ctx.budget, ctx.remaining()))
        return {}

    monkeypatch.setattr(PROBES["host"], "probe", measure)
    runner = Runner(max_concurrency=1, clock=clock)
    clock.advance(100)  # time before the run does not count against it
    await runner.run(item("host: {}"), timeout=2)
    assert seen == [(pytest.approx(1.8), pytest.approx(1.8))]
    await runner.resources.aclose()


def test_run_result_labels() -> None:
    assert run_result(Reason.OK) == "success"
    assert run_result(Reason.TIMEOUT) == "timeout"
    assert run_result(Reason.ERROR) == "error"
    for reason in (Reason.CONDITION, Reason.CONNECT, Reason.DNS, Reason.TLS, Reason.AUTH):
        assert run_result(reason) == "failure"


async def test_runner_times_out_a_hanging_probe_and_counts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def hang(spec: object, ctx: object) -> dict[str, object]:
        await asyncio.sleep(60)
        return {}

    monkeypatch.setattr(PROBES["host"], "probe", hang)
    runner = Runner(max_concurrency=4, clock=FixedClock())
    result = await asyncio.wait_for(runner.run(item("host: {}"), timeout=0.2), 5)
    assert result.reason is Reason.TIMEOUT
    assert result.message == "no answer within 0.2s"
    assert runner.runs[("host", "timeout")] == 1
    await runner.resources.aclose()


async def test_runner_turns_a_crashing_probe_into_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def crash(spec: object, ctx: object) -> dict[str, object]:
        raise RuntimeError("probe bug")

    async def fail(spec: object, ctx: object) -> dict[str, object]:
        raise ProbeFailure(Reason.AUTH, "password authentication failed for user app")

    runner = Runner(max_concurrency=4, clock=FixedClock())
    monkeypatch.setattr(PROBES["host"], "probe", crash)
    crashed = await runner.run(item("host: {}"), timeout=1)
    assert crashed.reason is Reason.ERROR
    assert crashed.message == "RuntimeError: probe bug"
    monkeypatch.setattr(PROBES["host"], "probe", fail)
    rejected = await runner.run(item("host: {}"), timeout=1)
    assert rejected.reason is Reason.AUTH
    assert runner.runs[("host", "error")] == 1
    assert runner.runs[("host", "failure")] == 1
    await runner.resources.aclose()


async def test_concurrency_bound_holds() -> None:
    runner = Runner(max_concurrency=2, clock=FixedClock())
    running = 0
    peak = 0
    full, release = asyncio.Event(), asyncio.Event()

    async def held(spec: object, ctx: object) -> dict[str, object]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            full.set()
        await release.wait()
        running -= 1
        return {"cpu_count": 2}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PROBES["host"], "probe", held)
        runs = asyncio.gather(
            *(runner.run(item("host: {}", '["cpu_count >= 1"]'), 1) for _ in range(8))
        )
        await asyncio.wait_for(full.wait(), 1)  # two run at once, the bound is reached
        release.set()
        results = await runs
    assert all(r.passing for r in results)
    assert peak == 2
    await runner.resources.aclose()


def test_masking_keeps_every_field_and_masks_the_texts() -> None:
    result = Result(
        passing=False,
        reason=Reason.CONDITION,
        started_at=1.5,
        duration=0.25,
        facts={"body": "token=hunter22", "status": 500},
        failed=("body contains 'Bearer abc123'",),
        message="GET https://u:pw12@h/ failed",
    )
    out = masked(result, Redactor(["pw12"]))
    assert {f.name for f in fields(Result)} == {
        "passing",
        "reason",
        "started_at",
        "duration",
        "facts",
        "failed",
        "message",
    }, "a new field of Result: masked must carry it over"
    assert (out.passing, out.reason, out.started_at, out.duration) == (
        False,
        Reason.CONDITION,
        1.5,
        0.25,
    )
    assert out.facts == {"body": "token=<redacted>", "status": 500}
    assert out.failed == ("body contains 'Bearer <redacted>'",)
    assert out.message == "GET https://u:<redacted>@h/ failed"
    assert masked(replace(result, message=""), Redactor()).message == ""
