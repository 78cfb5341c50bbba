"""Config loading: every mistake is reported with its file, line and item; none passes silently."""

from __future__ import annotations

import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.conditions import Condition
from exporter.loader import (
    MAX_DOCUMENT_BYTES,
    ConfigError,
    load_config,
    parse_config,
    unknown_fact,
)
from exporter.probes import PROBES

TESTDATA = Path(__file__).parent / "testdata"
REPO = Path(__file__).parents[2]

# file -> every (line, item, fragment of the message) it must produce, and nothing else.
INVALID = {
    "invalid-unknown-field.yml": [
        (8, "health", "http.url: required field is missing"),
        (9, "health", "http.urll: unknown field (did you mean 'url'?)"),
    ],
    "invalid-two-probes.yml": [(6, "health", "several probes (http, tcp): keep exactly one")],
    "invalid-no-probe.yml": [(6, "health", "no probe: give exactly one of http,")],
    "invalid-duration.yml": [(8, "health", "interval: invalid duration '30x'")],
    "invalid-condition.yml": [(11, "health", "expect[1]:")],
    "invalid-duplicate-id.yml": [(11, "health", "id is used twice in checklist 'app'")],
    "invalid-duplicate-names.yml": [
        (9, None, "section name 's' is used twice in 'app'"),
        (11, "a", "id is used twice in checklist 'app': ids must be unique within a checklist"),
        (14, "a", "id is used twice in checklist 'app': ids must be unique within a checklist"),
    ],
    "invalid-duplicate-checklist.yml": [(17, None, "checklist name 'app' is used twice")],
    "invalid-missing-env.yml": [
        (8, "health", "environment variable READINESS_TEST_SURELY_UNSET is not set")
    ],
    "invalid-cron.yml": [(8, "backup", "invalid cron schedule '0 25 * * *'")],
    "invalid-literal-password.yml": [(8, "db-up", "a password is written in the file")],
    "invalid-yaml-syntax.yml": [(6, None, "invalid YAML")],
    "invalid-duration-list.yml": [
        (8, "health", "interval: expected a duration such as 30s, got a list")
    ],
    "invalid-every-mapping.yml": [
        (8, "health", "every: expected a duration such as 30s, got a mapping")
    ],
    "invalid-default-timeout-list.yml": [
        (2, None, "exporter.default_timeout: expected a duration such as 30s, got a list")
    ],
    "invalid-duration-huge.yml": [
        (8, "health", "interval: duration '99999999999999999999d' is too long")
    ],
    "invalid-duration-inf.yml": [
        (8, "health", "interval: expected a duration such as 30s, got inf")
    ],
    "invalid-manual-null.yml": [(6, "health", "manual: is empty: write manual: {}")],
    "invalid-http-null.yml": [(6, "health", "http: is empty: write http: {...}")],
    "invalid-merge-key.yml": [
        (7, "two", "YAML merge keys (<<) are not supported: write the keys out"),
        (7, "two", "no probe"),
    ],
    "invalid-unknown-tag.yml": [(8, "health", "unsupported tag !foo: remove it")],
    "invalid-tagged-mapping.yml": [(8, "health", "unsupported tag !foo: remove it")],
    "invalid-bad-int-tag.yml": [(8, "health", "'abc' is not a valid !!int")],
    "invalid-bool-tag.yml": [(7, "health", "'maybe' is not a valid !!bool")],
    "invalid-timestamp-tag.yml": [(7, "health", "'x' is not a valid !!timestamp")],
    "invalid-self-alias.yml": [(1, None, "an alias refers to the value that contains it")],
    "invalid-alias-bomb.yml": [(5, None, "too many aliases: expanding them builds more than")],
    "invalid-nul-byte.yml": [(9, None, "invalid YAML: control characters are not allowed")],
    "invalid-state-url.yml": [(2, None, "exporter.state: unsupported state URL (mysql://): use")],
    "invalid-listen-ipv6.yml": [(2, None, "exporter.listen: [zz] in '[zz]:80' is not an IPv6")],
    "invalid-unknown-fact.yml": [
        (11, "health", "expect[1]: unknown fact 'stauts' for http (did you mean 'status'?)"),
        (12, "health", "unknown fact 'headers.etag' for http (did you mean 'header.etag'?)"),
        (16, "oncall", "expect[0]: a manual item has no facts to judge: remove its expect"),
    ],
    "invalid-listen-port.yml": [(2, None, "port 99999 in '127.0.0.1:99999' is above 65535")],
    "invalid-depends-on-unknown.yml": [
        (11, "tables", "depends_on[1]: no item 'postgres-upp' in checklist 'app' (write ITEM"),
        (11, "tables", "depends_on[2]: no item 'other/redis-up' (write ITEM for this checklist"),
    ],
    "invalid-depends-on-cycle.yml": [
        (17, "tables", "depends_on: a cycle, app/postgres-up -> app/host-up -> app/tables ->"),
        (21, "itself", "depends_on: an item cannot depend on itself"),
    ],
    "invalid-several.yml": [
        (2, None, "exporter.listen: 'nowhere' is not host:port (e.g. 127.0.0.1:9840"),
        (4, None, "checklists[0].name: 'Bad Name' is not a valid name: use lowercase letters"),
        (10, "health", "severity: Input should be 'critical', 'warning' or 'info'"),
        (15, "disk", "expect[0]:"),
        (16, "oncall", "grace only applies to recurring items"),
    ],
}


# Refused where a daemon needs them (validate, serve), not by every verb.
NEEDS_TOKENS = {
    "invalid-unset-token.yml": [
        (3, None, "api token oncall: environment variable READINESS_TEST_SURELY_UNSET_TOKEN")
    ],
}


def test_every_invalid_file_is_in_a_table() -> None:
    assert {p.name for p in TESTDATA.glob("invalid-*.yml")} == {*INVALID, *NEEDS_TOKENS}


@pytest.mark.parametrize("name", sorted({**INVALID, **NEEDS_TOKENS}))
def test_invalid_config_reports_every_error_with_line_and_item(name: str) -> None:
    path = TESTDATA / name
    with pytest.raises(ConfigError) as caught:
        load_config(path, tokens=name in NEEDS_TOKENS)
    issues = caught.value.issues
    expected = {**INVALID, **NEEDS_TOKENS}[name]
    assert len(issues) == len(expected), "\n".join(str(i) for i in issues)
    for issue, (line, item, fragment) in zip(issues, expected, strict=True):
        assert issue.file == str(path)
        assert issue.line == line, str(issue)
        assert issue.item == item, str(issue)
        assert fragment in issue.message, str(issue)
        rendered = str(issue)
        assert rendered.startswith(f"{path}:{line}:")
        if item:
            assert f": item {item}: " in rendered


def test_error_lines_render_as_file_line_item_message() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(TESTDATA / "invalid-duration.yml")
    assert str(caught.value.issues[0]) == (
        f"{TESTDATA / 'invalid-duration.yml'}:8: item health: interval: invalid duration '30x': "
        "use a number with a unit (ms, s, m, h, d, w), e.g. 30s or 1h30m"
    )


def test_shipped_configs_are_valid() -> None:
    paths = [
        REPO / "config" / "readiness.example.yaml",
        *sorted((REPO / "config" / "examples").glob("*.yaml")),
    ]
    assert len(paths) >= 2
    for path in paths:
        load_config(path)


MINIMAL = """
checklists:
  - name: app
    go_live: 2026-12-01T00:00:00Z
    sections:
      - name: ops
        items:
          - id: health
            title: Health
            interval: 30s
            timeout: 2s
            http: {url: "${READINESS_TEST_BASE:-http://127.0.0.1:8000}/health"}
          - id: backups
            title: Backups
            every: 1d
            grace: 2h
            file: {path: /var/backups/*.dump}
            expect: ["age < 26h", "size > 1MiB"]
          - id: oncall
            title: On-call rotation
            manual: {}
            every: 30d
"""


def test_valid_config_becomes_typed_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("READINESS_TEST_BASE", raising=False)
    config = parse_config(MINIMAL).config
    items = config.checklists[0].sections[0].items
    health, backups, oncall = items
    assert health.kind == "http"
    assert health.interval == timedelta(seconds=30)
    assert health.timeout == timedelta(seconds=2)
    assert health.spec.url == "http://127.0.0.1:8000/health"  # type: ignore[attr-defined]
    assert [c.text for c in health.conditions] == ["status < 400"]  # the kind's default
    assert backups.every == timedelta(days=1) and backups.grace == timedelta(hours=2)
    assert [c.text for c in backups.conditions] == ["age < 26h", "size > 1MiB"]
    assert oncall.kind == "manual"
    assert config.checklists[0].go_live is not None
    assert config.exporter.listen == "127.0.0.1:9840"


def test_env_substitution_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READINESS_TEST_BASE", "http://10.0.0.5:9000")
    monkeypatch.setenv("READINESS_LISTEN", "0.0.0.0:9999")
    monkeypatch.setenv("READINESS_DEFAULT_INTERVAL", "15s")
    config = parse_config(MINIMAL).config
    assert config.checklists[0].sections[0].items[0].spec.url == "http://10.0.0.5:9000/health"  # type: ignore[attr-defined]
    assert config.exporter.port == 9999
    assert config.exporter.default_interval == timedelta(seconds=15)


def test_env_overrides_win_over_the_file_and_lists_are_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = "exporter:\n  max_concurrency: 8\n  log_level: debug\n" + MINIMAL
    monkeypatch.setenv("READINESS_TEST_BASE", "http://10.0.0.5:9000")
    monkeypatch.setenv("readiness_max_concurrency", "3")
    monkeypatch.setenv("READINESS_ALLOWED_ORIGINS", '["https://ops.example.com"]')
    settings = parse_config(written).config.exporter
    assert settings.max_concurrency == 3
    assert settings.log_level == "debug"
    assert settings.allowed_origins == ("https://ops.example.com",)

    monkeypatch.setenv("READINESS_ALLOWED_ORIGINS", "https://ops.example.com")
    monkeypatch.setenv("READINESS_MAX_CONCURRENCY", "lots")
    with pytest.raises(ConfigError) as caught:
        parse_config(written, "c.yaml")
    assert [str(i) for i in caught.value.issues] == [
        "c.yaml:1: READINESS_ALLOWED_ORIGINS must be a JSON list, e.g. "
        "READINESS_ALLOWED_ORIGINS='[\"...\"]'"
    ]
    monkeypatch.delenv("READINESS_ALLOWED_ORIGINS")
    with pytest.raises(ConfigError, match=r"c.yaml:2: exporter.max_concurrency: Input should be"):
        parse_config(written, "c.yaml")


def test_secret_env_values_are_collected_for_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "s3cret-token-value")
    text = """
checklists:
  - name: app
    sections:
      - name: api
        items:
          - id: api
            title: API answers with a token
            http:
              url: http://127.0.0.1:8000/
              headers: {Authorization: "Bearer ${APP_API_TOKEN}"}
"""
    loaded = parse_config(text)
    assert "s3cret-token-value" in loaded.secrets
    assert "Bearer s3cret-token-value" in loaded.secrets


def test_fingerprint_changes_with_definition_not_title() -> None:
    base = parse_config(MINIMAL).config.checklists[0].sections[0].items[0]
    retitled = parse_config(MINIMAL.replace("title: Health", "title: Health endpoint")).config
    redefined = parse_config(MINIMAL.replace("interval: 30s", "interval: 10s")).config
    assert retitled.checklists[0].sections[0].items[0].fingerprint == base.fingerprint
    assert redefined.checklists[0].sections[0].items[0].fingerprint != base.fingerprint


def test_duplicate_yaml_key_is_an_error() -> None:
    text = "checklists:\n  - name: a\n    name: b\n    sections: []\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "dup.yml")
    assert any(i.line == 3 and "duplicate key 'name'" in i.message for i in caught.value.issues)


VERBS = {
    "validate": [],
    "check": ["--no-serve"],
    "serve": [],
    "report": [],
    "attest": ["app", "health", "--by", "alice"],
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_exits_2_with_the_place_on_every_invalid_file(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in sorted(TESTDATA.glob("invalid-*.yml")):
        if verb not in ("validate", "serve") and path.name in NEEDS_TOKENS:
            continue  # the token is only needed by a daemon
        code = main([verb, "--config", str(path), *VERBS[verb]])
        err = capsys.readouterr().err
        assert code == 2, f"{verb} {path.name}: {err}"
        assert err.startswith(f"{path}:"), err
        assert "Traceback" not in err


def test_long_title_validates_in_linear_time() -> None:
    """The literal-password check was a regex search retried at every position: 13.6 s."""
    title = "a" * 80_000
    text = MINIMAL.replace("title: Health", f"title: {title}")
    started = time.perf_counter()
    loaded = parse_config(text)
    assert time.perf_counter() - started < 1.0
    assert loaded.config.checklists[0].sections[0].items[0].title == title


def test_alias_bomb_is_refused_fast_and_small() -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="too many aliases"):
            load_config(TESTDATA / "invalid-alias-bomb.yml")
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 2**20


def test_shared_blocks_through_aliases_are_fine() -> None:
    text = MINIMAL.replace(
        "file: {path: /var/backups/*.dump}", "file: &backup {path: /var/backups/*.dump}"
    ) + "".join(
        f"          - {{id: copy-{n}, title: Copy, every: 1d, file: *backup}}\n" for n in range(200)
    )
    items = parse_config(text).config.checklists[0].sections[0].items
    assert len(items) == 203
    assert items[-1].spec == items[1].spec


def test_every_kind_declares_the_facts_of_its_default_expect() -> None:
    for kind, module in PROBES.items():
        for text in module.DEFAULT_EXPECT:
            assert unknown_fact(Condition.parse(text).fact, kind) is None, (kind, text)


@pytest.mark.parametrize(
    ("kind", "fact"),
    [
        ("http", "header.content-type"),
        ("http", "json.items.0.id"),
        ("postgres", "setting.shared_buffers"),
        ("redis", "info.db0.keys"),
        ("file", "duration"),
    ],
)
def test_fact_families_and_the_run_duration_are_known(kind: str, fact: str) -> None:
    assert unknown_fact(fact, kind) is None


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as stream:
        stream.truncate(MAX_DOCUMENT_BYTES + 1)  # sparse: nothing to parse, only to refuse
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: larger than 16 MiB: split it, or trim it"


def test_default_conditions_are_parsed_once_and_fingerprints_computed_once() -> None:
    text = (
        "checklists:\n  - name: a\n    sections:\n      - name: s\n        items:\n"
        "          - {id: one, title: t, tcp: {host: 127.0.0.1, port: 1}}\n"
        "          - {id: two, title: t, tcp: {host: 127.0.0.1, port: 2}}\n"
    )
    one, two = parse_config(text).config.checklists[0].sections[0].items
    assert one.conditions is two.conditions  # the kind's default, not parsed again per run
    assert [c.text for c in one.conditions] == ["connected == true"]
    fingerprint = one.fingerprint
    assert one.fingerprint is fingerprint  # not hashed again on every /status request
    again = parse_config(text).config.checklists[0].sections[0].items[0]
    assert again == one and again.fingerprint == fingerprint and fingerprint != two.fingerprint


def test_an_item_has_one_field_per_registered_kind_in_its_order() -> None:
    """Item's probe fields are written out (so mypy sees them): a kind added to the registry
    without its field here, or the other way round, fails."""
    from exporter.config import Item

    fields = [name for name in Item.model_fields if name in PROBES or name in _kind_fields()]
    assert fields == list(PROBES)
    for kind, module in PROBES.items():
        assert Item.model_fields[kind].annotation == module.Spec | None


def _kind_fields() -> set[str]:
    from exporter.config import Item

    return {n for n, f in Item.model_fields.items() if "Spec" in str(f.annotation)}
