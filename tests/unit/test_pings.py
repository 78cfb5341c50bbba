"""Job pings: the request's validation, the result a finished run makes, the output tail, and
the config rules of a `ping` item."""

from __future__ import annotations

import json

import pytest

from exporter.attestations import Invalid
from exporter.loader import ConfigError, parse_config
from exporter.pings import OUTPUT_BYTES, finished, parse_request, ping_item, tail
from exporter.reasons import Reason

TEXT = """
checklists:
  - name: jobs
    sections:
      - name: nightly
        items:
          - id: backup
            title: Backups run
            every: 1d
            grace: 2h
            timeout: 1h
            ping: {}
          - id: export
            title: Export
            ping: {}
            expect: ["exit_code == 0", "duration < 10m"]
          - id: disk
            title: Disk
            disk: {path: /}
"""
NOW = 1_800_000_000.0


def request(**fields: object) -> bytes:
    return json.dumps(
        {"checklist": "jobs", "item": "backup", "status": "success", **fields}
    ).encode()


def test_a_success_passes_and_keeps_code_duration_and_output() -> None:
    item = ping_item(parse_config(TEXT).config, "jobs", "backup")
    result = finished(item, parse_request(request(exit_code=0, duration=60.0, output="ok\n")), NOW)
    assert (result.passing, result.reason) == (True, Reason.OK)
    assert result.started_at == NOW - 60
    assert result.facts == {"status": "success", "exit_code": 0, "duration": 60.0, "output": "ok\n"}


@pytest.mark.parametrize(
    ("fields", "failed"),
    [
        ({"status": "fail", "exit_code": 2}, ["exit_code == 0 (got 2)"]),
        ({"status": "fail"}, ["exit_code == 0 (got 1)"]),  # no code: a failure's is 1
        ({"status": "fail", "exit_code": 0}, ["status == 'success' (got 'fail', exit code 0)"]),
        ({"status": "success", "exit_code": 5}, ["exit_code == 0 (got 5)"]),
    ],
)
def test_a_failed_run_fails_at_once(fields: dict[str, object], failed: list[str]) -> None:
    item = ping_item(parse_config(TEXT).config, "jobs", "backup")
    result = finished(item, parse_request(request(**fields)), NOW)
    assert (result.passing, result.reason, list(result.failed)) == (False, Reason.CONDITION, failed)


def test_the_items_own_conditions_judge_the_run() -> None:
    item = ping_item(parse_config(TEXT).config, "jobs", "export")
    slow = parse_request(request(item="export", exit_code=0, duration=900.0))
    assert finished(item, slow, NOW).failed == ("duration < 10m (got 900.0)",)


def test_output_keeps_lines_and_tabs_but_no_control_or_reordering_characters() -> None:
    item = ping_item(parse_config(TEXT).config, "jobs", "backup")
    printed = "\x1b[31mdone\x1b[0m\r\n\tok\x00 \u202eexe.gnp\u200b\n"
    result = finished(item, parse_request(request(output=printed)), NOW)
    assert result.facts["output"] == "[31mdone[0m\n\tok exe.gnp\n"


def test_output_keeps_its_last_4_kib_on_a_character_boundary() -> None:
    text = "é" * 5000  # two bytes each
    kept = tail(text)
    assert kept.startswith("…") and len(kept[1:].encode()) <= OUTPUT_BYTES
    assert text.endswith(kept[1:])
    assert tail("short") == "short"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "body"),
        (b"{", "body"),
        (request(status="done"), "status"),
        (request(exit_code="0"), "exit_code"),
        (request(exit_code=True), "exit_code"),
        (request(duration=-1.0), "duration"),
        (request(extra=1), "extra"),
    ],
)
def test_a_bad_request_names_its_field(body: bytes, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_request(body)
    assert caught.value.field == field


def test_only_ping_items_take_pings() -> None:
    with pytest.raises(Invalid, match="is a disk item: only ping items take pings"):
        ping_item(parse_config(TEXT).config, "jobs", "disk")


def test_a_ping_item_is_not_scheduled() -> None:
    text = TEXT.replace("            timeout: 1h\n", "            interval: 1h\n")
    with pytest.raises(ConfigError, match="a ping item is reported by its job, not probed"):
        parse_config(text)
