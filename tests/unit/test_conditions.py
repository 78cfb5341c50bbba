"""Conditions: the `FACT OP VALUE` parser, how each operator judges each kind of fact, and the
messages a user sees for a condition that cannot be parsed."""

from __future__ import annotations

import contextlib
import re
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.conditions import (
    OPERATORS,
    Bytes,
    Condition,
    ConditionError,
    Regex,
    Seconds,
    Version,
    failing,
    parse_conditions,
)

if TYPE_CHECKING:
    from exporter.probes.base import FactValue


def judge(text: str, fact: FactValue) -> tuple[bool, str]:
    """Whether `text` holds when its fact is `fact`, and the explanation."""
    condition = Condition.parse(text)
    facts: dict[str, FactValue] = {condition.fact: fact}
    return condition.holds(facts), condition.explain(facts)


@pytest.mark.parametrize(
    ("text", "fact", "op", "value"),
    [
        ("status == 200", "status", "==", 200),
        ("status != 503", "status", "!=", 503),
        ("latency < 0.5", "latency", "<", 0.5),
        ("temperature > -3", "temperature", ">", -3),
        ("temperature >= -2.5", "temperature", ">=", -2.5),
        ("body == 'ok'", "body", "==", "ok"),
        ('body == "all good"', "body", "==", "all good"),
        (r"body == 'it\'s up'", "body", "==", "it's up"),
        (r'body == "say \"hi\""', "body", "==", 'say "hi"'),
        (r"body == 'back\\slash'", "body", "==", "back\\slash"),
        ("body == ''", "body", "==", ""),
        ("connected == true", "connected", "==", True),
        ("connected != FALSE", "connected", "!=", False),
        ("duration <= 500ms", "duration", "<=", Seconds(0.5)),
        ("age < 30s", "age", "<", Seconds(30)),
        ("age < 26h", "age", "<", Seconds(93600)),
        ("age < 7d", "age", "<", Seconds(604800)),
        ("age < 1h30m", "age", "<", Seconds(5400)),
        ("size >= 512KiB", "size", ">=", Bytes(524288)),
        ("size < 1MiB", "size", "<", Bytes(1048576)),
        ("size < 10GB", "size", "<", Bytes(10**10)),
        ("version >= 15", "version", ">=", 15),
        ("version >= 7.2", "version", ">=", 7.2),
        ("version >= 15.4.1", "version", ">=", Version((15, 4, 1), "15.4.1")),
        ("version >= v1.2", "version", ">=", Version((1, 2), "v1.2")),
        ("body contains 'ok'", "body", "contains", "ok"),
        ("body contains 200", "body", "contains", "200"),
        ("header.etag exists", "header.etag", "exists", None),
        ("header.etag exists true", "header.etag", "exists", True),
        ("header.etag exists false", "header.etag", "exists", False),
        ("json.data.items.0.id == 7", "json.data.items.0.id", "==", 7),
        ("header.content-type == 'text/html'", "header.content-type", "==", "text/html"),
        ("setting.statement_timeout == 0", "setting.statement_timeout", "==", 0),
        ("info.maxmemory > 0B", "info.maxmemory", ">", Bytes(0)),
        ("path/to_file.size < 1KB", "path/to_file.size", "<", Bytes(1000)),
        ("  status   ==\t200  ", "status", "==", 200),
    ],
)
def test_parse_reads_fact_operator_and_typed_value(
    text: str, fact: str, op: str, value: object
) -> None:
    condition = Condition.parse(text)
    assert (condition.fact, condition.op, condition.value) == (fact, op, value)
    assert type(condition.value) is type(value)
    assert condition.text == text.strip()


def test_parse_compiles_a_matches_regex_once() -> None:
    condition = Condition.parse(r"body matches '^ok\d+$'")
    assert isinstance(condition.value, Regex)
    assert condition.value.pattern == r"^ok\d+$"


def test_a_catastrophic_regex_runs_in_linear_time() -> None:
    """With Python's re, `(a+)+b` on 64 KiB of `a` backtracks for longer than the universe."""
    condition = Condition.parse("body matches '(a+)+b'")
    started = time.perf_counter()
    assert not condition.holds({"body": "a" * 65536})
    assert time.perf_counter() - started < 0.5
    assert condition.holds({"body": "a" * 65536 + "b"})


def test_parse_gives_equal_hashable_conditions_for_equal_text() -> None:
    assert Condition.parse("status == 200") == Condition.parse("status == 200")
    assert len({Condition.parse("body matches 'x'"), Condition.parse("body matches 'x'")}) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty condition: write FACT OP VALUE, e.g. 'status == 200'"),
        ("   ", "empty condition"),
        ("status", "no operator in 'status': write FACT OP VALUE, e.g. 'status == 200'"),
        (
            "body =~ x",
            "unknown operator '=~' in 'body =~ x': "
            "use one of == != < <= > >= contains matches exists",
        ),
        ("status = 200", "unknown operator '=' in 'status = 200'"),
        ("status '==' 200", "unknown operator '=='"),
        ("status ==", "missing value after '==' in 'status ==': e.g. 'status == 200'"),
        ("body contains", "missing value after 'contains'"),
        ("body matches", "missing value after 'matches'"),
        ("body == ok", "unquoted word 'ok' in 'body == ok': quote strings, e.g. body == 'ok'"),
        ("status < fast", "'<' needs a number, duration (30s), size (1MiB) or version (15.4)"),
        ("body contains ok", "unquoted word 'ok' in 'body contains ok': quote strings"),
        ("body == all good", "unexpected 'good' after the value in 'body == all good'"),
        ("status == 200 300", "unexpected '300' after the value"),
        ("body == 'ok' extra", "unexpected 'extra' after the value"),
        ("body matches '[unclosed'", "bad regex '[unclosed' in \"body matches '[unclosed'\""),
        ("body matches 'a{4294967296}'", "bad regex"),
        ("body matches 'a{2000}'", "repetition counts stop at 1000"),
        (r"body matches '(a)\1'", "backreferences and lookaround are not supported"),
        ("body matches '(?=a)'", "backreferences and lookaround are not supported"),
        ("body matches '" + "a" * 1001 + "'", "longer than 1000 characters"),
        ("body matches ok", "quote the regex after 'matches'"),
        ("body == 'unterminated", "unterminated string"),
        ("body == 'ok'junk", "unexpected 'junk' right after a quoted value"),
        ("status==200", "put spaces around the operator in 'status==200'"),
        ("status>=200 ok", "put spaces around the operator"),
        ("'status' == 200", "a fact name is not quoted"),
        ("9lives == 1", "invalid fact name '9lives'"),
        ("status! == 1", "put spaces around the operator"),
        ("x exists maybe", "'exists' takes no value or true/false, not 'maybe'"),
        ("x exists 'true'", "'exists' takes no value or true/false"),
        ("x exists true false", "unexpected 'false' after the value"),
        ("connected < true", "booleans have no order in 'connected < true': use == or !="),
        ("name < 'abc'", "'<' needs a number, duration, size or version, not the string 'abc'"),
        ("version >= '15.4'", "write it without quotes"),
        ("status == " + "9" * 5000, "is too large"),
    ],
)
def test_parse_rejects_bad_input_saying_how_to_fix_it(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=re.escape(message)):
        Condition.parse(text)


def test_condition_error_is_a_value_error_so_pydantic_reports_it() -> None:
    assert issubclass(ConditionError, ValueError)


def test_parse_rejects_text_that_is_not_a_string() -> None:
    with pytest.raises(ConditionError, match="a condition is text"):
        Condition.parse(200)  # type: ignore[arg-type]


def test_parse_conditions_parses_all_and_names_the_bad_one() -> None:
    parsed = parse_conditions(["status < 400", "body contains 'ok'"])
    assert [c.text for c in parsed] == ["status < 400", "body contains 'ok'"]
    assert isinstance(parsed, tuple)
    with pytest.raises(ConditionError, match=r"^condition 2: unknown operator '=' in 'body = 1'"):
        parse_conditions(["status < 400", "body = 1"])


def test_parse_conditions_rejects_a_single_string() -> None:
    with pytest.raises(ConditionError, match="expect is a list of conditions"):
        parse_conditions("status == 200")


@pytest.mark.parametrize(
    ("text", "fact", "expected"),
    [
        # numbers
        ("status == 200", 200, True),
        ("status == 200", 503, False),
        ("status == 200", 200.0, True),
        ("status != 200", 503, True),
        ("status != 200", 200, False),
        ("status < 400", 399, True),
        ("status < 400", 400, False),
        ("status <= 400", 400, True),
        ("status > 400", 401, True),
        ("status > 400", 400, False),
        ("status >= 400", 399, False),
        ("latency < 0.5", 0.25, True),
        ("temperature > -3", -2.5, True),
        # numeric strings
        ("setting.max_connections >= 100", "100", True),
        ("setting.max_connections > 100", " 99 ", False),
        ("file.mode == 640", "0640", True),
        ("info.mem_fragmentation_ratio < 1.5", "1.23", True),
        ("info.mem_fragmentation_ratio > 1.5", "1.23", False),
        # a boolean is not a number, nor a number a boolean
        ("connected == 1", True, False),
        ("connected != 1", True, False),
        ("connected == true", 1, False),
        # booleans
        ("connected == true", True, True),
        ("connected == true", False, False),
        ("connected == false", False, True),
        ("connected != true", False, True),
        ("setting.ssl == true", "on", True),
        ("setting.fsync == false", "off", True),
        ("setting.fsync == false", "No", True),
        ("connected == true", "maybe", False),
        # durations
        ("age < 30s", 12.5, True),
        ("age < 30s", 45, False),
        ("duration <= 500ms", 0.5, True),
        ("age < 26h", 93599, True),
        ("setting.statement_timeout == 30s", "30s", True),
        ("setting.statement_timeout >= 5m", "5min", True),
        ("setting.statement_timeout < 1s", "100ms", True),
        ("setting.statement_timeout == 0s", "0", True),
        ("setting.idle_session_timeout == 1h", "1h", True),
        ("setting.deadlock_timeout > 1d", "1h30m", False),
        ("setting.vacuum_cost_delay < 1ms", "500us", True),
        ("age < 30s", "soon", False),
        ("age < 30s", True, False),
        # sizes
        ("memory < 1MiB", 1000, True),
        ("memory >= 512KiB", 524288, True),
        ("memory >= 512KiB", 524287, False),
        ("setting.shared_buffers >= 128MB", "128MB", True),
        ("setting.block_size == 8KB", "8kB", True),
        ("size < 10GB", "1MiB", True),
        ("info.maxmemory == 0B", "0", True),
        ("size < 1MiB", "big", False),
        # versions
        ("version == 15", "15.19", True),
        ("version == 16", "15.19", False),
        ("version != 16", "15.19", True),
        ("version >= 15.4", "15.19", True),
        ("version < 15.4", "15.19", False),
        ("version > 1.10", "1.9", False),
        ("version >= 1.10", "1.10", True),
        ("version >= 1.2.0", "1.2", True),
        ("version == 1.2.0", "1.2", True),
        ("version == v1.2", "v1.2.3", True),
        ("server_version >= 15", "PostgreSQL 15.4 on x86_64-pc-linux-gnu", True),
        ("setting.server_version < 16", "15.4 (Debian 15.4-1.pgdg120+1)", True),
        ("info.redis_version >= 7.2", "7.0.15", False),
        ("info.redis_version >= 7.0.15", "7.0.15", True),
        ("info.redis_version == 7.0", "7.0.15", True),
        ("info.redis_version == 7", "7.0.15", True),
        ("info.redis_version < 7.0.16", "7.0.15", True),
        ("json.release >= 2", "release 2.3.1", True),
        ("json.version >= 1.2.3", 2, True),
        ("version >= 15", "latest", False),
        ("version >= 15.4.1", True, False),
        # strings
        ("body == 'ok'", "ok", True),
        ("body == 'ok'", "OK", False),
        ("body != 'ok'", "fail", True),
        ("body == 'ok'", 1, False),
        ("body == 'ok'", ["ok"], False),
        ("name < 5", "abc", False),
        # contains
        ("body contains 'ok'", "all ok here", True),
        ("body contains 'ok'", "fine", False),
        ("tags contains 'prod'", ["prod", "eu"], True),
        ("tags contains 'pro'", ["prod"], False),
        ("body contains 200", "HTTP 200", True),
        ("status contains '20'", 200, False),
        # matches
        ("body matches '^ok'", "ok then", True),
        ("body matches '^ok'", "not ok", False),
        ("status matches '^2..$'", 204, True),
        (r"san matches '\.example\.com$'", ["a.example.com", "b.test"], True),
        (r"san matches '\.example\.com$'", ["b.test"], False),
        # exists
        ("header.etag exists", "abc", True),
        ("header.etag exists", "", True),
        ("connected exists", False, True),
        ("header.etag exists true", "x", True),
        ("header.etag exists false", "x", False),
    ],
)
def test_holds(text: str, fact: FactValue, expected: bool) -> None:
    assert judge(text, fact)[0] is expected


@pytest.mark.parametrize(
    "text",
    [
        "status == 200",
        "status != 200",
        "status < 400",
        "status <= 400",
        "status > 400",
        "status >= 400",
        "age < 30s",
        "version >= 15",
        "connected == false",
        "body contains 'ok'",
        "body matches '.*'",
        "header.etag exists",
        "header.etag exists true",
    ],
)
@pytest.mark.parametrize("facts", [{}, {"status": None, "body": None, "connected": None}])
def test_a_missing_fact_fails_every_operator(text: str, facts: dict[str, FactValue]) -> None:
    condition = Condition.parse(text)
    assert not condition.holds(facts)
    assert condition.explain(facts) == f"{text} (fact {condition.fact} missing)"


def test_exists_false_holds_only_for_a_missing_fact() -> None:
    condition = Condition.parse("header.etag exists false")
    assert condition.holds({})
    assert condition.holds({"header.etag": None})
    assert not condition.holds({"header.etag": "abc"})


@pytest.mark.parametrize(
    ("text", "fact", "explanation"),
    [
        ("status == 200", 503, "status == 200 (got 503)"),
        ("status == 200", 200, "status == 200 (got 200)"),
        ("body == 'ok'", "fail", "body == 'ok' (got 'fail')"),
        ("connected == true", False, "connected == true (got false)"),
        ("connected == 1", True, "connected == 1 (got true, a boolean, not a number)"),
        ("name < 5", "abc", "name < 5 (got 'abc', text, not a number)"),
        ("timeout > 0", "30s", "timeout > 0 (got '30s', a duration, not a number)"),
        ("age < 30s", "soon", "age < 30s (got 'soon', text, not a duration)"),
        ("size < 1MiB", [], "size < 1MiB (got [], a list, not a size)"),
        ("version >= 15.4.1", "latest", "version >= 15.4.1 (got 'latest', text, not a version)"),
        ("body == 'ok'", 200, "body == 'ok' (got 200, a number, not text)"),
        ("ssl == true", "128MB", "ssl == true (got '128MB', a size, not a boolean)"),
        ("status contains '2'", 200, "status contains '2' (got 200, a number, not text or a list)"),
    ],
)
def test_explain_says_what_was_found_and_why_it_does_not_compare(
    text: str, fact: FactValue, explanation: str
) -> None:
    assert judge(text, fact)[1] == explanation


def test_explain_shortens_a_long_fact() -> None:
    holds, explanation = judge("body contains 'ok'", "x" * 10_000)
    assert not holds
    assert explanation.endswith("...)")
    assert len(explanation) < 120


def test_failing_lists_the_explanation_of_each_condition_that_does_not_hold() -> None:
    conditions = parse_conditions(["status < 400", "body contains 'ok'", "duration < 1s"])
    assert failing(conditions, {"status": 200, "body": "ok", "duration": 0.2}) == []
    assert failing(conditions, {"status": 503, "duration": 0.2}) == [
        "status < 400 (got 503)",
        "body contains 'ok' (fact body missing)",
    ]


@pytest.mark.parametrize(
    "fact",
    [10**5000, "9" * 5000, "9" * 400 + "d", "9" * 400 + "GB", float("nan"), float("inf")],
    ids=["huge-int", "huge-digits", "huge-duration", "huge-size", "nan", "inf"],
)
@pytest.mark.parametrize(
    "text", ["x == 1", "x < 30s", "x < 1MiB", "x >= 1.2.3", "x matches '9'", "x exists"]
)
def test_judging_an_extreme_fact_fails_or_holds_but_never_raises(text: str, fact: object) -> None:
    condition = Condition.parse(text)
    facts = {"x": fact}
    assert isinstance(condition.holds(facts), bool)  # type: ignore[arg-type]
    assert condition.explain(facts).startswith(text)  # type: ignore[arg-type]


# Words a condition is made of, so generated text is often nearly valid, not only noise.
WORDS = st.sampled_from(
    [
        *("status", "version", "x.y-z/w", "==", "<", ">=", "!=", "contains", "matches", "exists"),
        *("200", "-1.5", "30s", "1MiB", "15.4.1", "v1", "true", "'ok'", '"a b"', "'[x'", "'", "\\"),
    ]
)
FACT_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["15.19", "7.0.15", "5min", "128MB", "8kB", "on", "0640", "PostgreSQL 15"]),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=5,
)
CONDITIONS = parse_conditions(
    [
        "status == 200",
        "status != 200",
        "status < 400",
        "status <= -1.5",
        "status > 7.2",
        "status >= 15.4.1",
        "status == true",
        "status != 'ok'",
        "status < 30s",
        "status >= 1MiB",
        "status contains 'ok'",
        "status matches '^1'",
        "status exists",
        "status exists false",
        "version == 15",
        "version < v1.10",
    ]
)


@given(st.text() | st.lists(st.text(max_size=3) | WORDS, max_size=5).map(" ".join))
def test_parse_returns_a_condition_or_raises_condition_error(text: str) -> None:
    with contextlib.suppress(ConditionError):
        assert Condition.parse(text).op in OPERATORS


@given(st.dictionaries(st.sampled_from(["status", "version"]) | st.text(), FACT_VALUES))
def test_failing_never_raises_whatever_the_facts(facts: dict[str, FactValue]) -> None:
    explanations = failing(CONDITIONS, facts)
    assert len(explanations) <= len(CONDITIONS)
    assert all(isinstance(explanation, str) for explanation in explanations)
