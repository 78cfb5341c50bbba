"""Required placeholders (`${VAR:?EXAMPLE}`): an item whose variable is unset is unconfigured,
never scheduled, never passing; a set variable makes it an ordinary item."""

from __future__ import annotations

import pytest

from exporter.evaluate import evaluate
from exporter.loader import ConfigError, parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.render import detail
from exporter.results import ItemKey, ItemState, Result

TEXT = """
checklists:
  - name: app
    sections:
      - name: ops
        items:
          - id: health
            title: Health
            http: {url: "${I16_BASE_URL:?http://127.0.0.1:8000}/health"}
          - id: both
            title: Both
            postgres:
              dsn: "${I16_DSN:?postgresql://u@127.0.0.1/db}"
              query: "select '${I16_NAME:?x}'"
          - id: disk
            title: Disk
            disk: {path: /}
"""


@pytest.fixture(autouse=True)
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("I16_BASE_URL", "I16_DSN", "I16_NAME", "I16_DIR"):
        monkeypatch.delenv(name, raising=False)


def items(text: str = TEXT) -> dict[str, tuple[str, ...]]:
    config = parse_config(text).config
    return {i.id: i.unconfigured for s in config.checklists[0].sections for i in s.items}


def test_an_unset_required_placeholder_makes_its_item_unconfigured() -> None:
    assert items() == {"health": ("I16_BASE_URL",), "both": ("I16_DSN", "I16_NAME"), "disk": ()}


def test_a_variable_set_empty_leaves_its_item_unconfigured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`LOG_DIR=` in an environment file must not make `${LOG_DIR:?/var/log/app}/*.log` probe
    /*.log, a target nobody named (the shell's ${VAR:?} also takes empty as unset)."""
    text = TEXT.replace('"${I16_BASE_URL:?http://127.0.0.1:8000}/health"', '"${I16_DIR:?/v}/*.log"')
    text = text.replace("http: {url:", "file: {path:")
    monkeypatch.setenv("I16_DIR", "")
    assert items(text)["health"] == ("I16_DIR",)


def test_setting_the_variable_configures_the_item(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("I16_BASE_URL", "http://app.internal:8080")
    config = parse_config(TEXT).config
    health = config.checklists[0].sections[0].items[0]
    assert health.unconfigured == ()
    assert str(health.spec.url) == "http://app.internal:8080/health"  # type: ignore[attr-defined]


def test_unconfigured_is_not_passing_whatever_was_stored_and_names_the_variable() -> None:
    config = parse_config(TEXT).config
    # A pass stored before the target became a placeholder does not count.
    old = ItemState(Result(True, Reason.OK, 1.0, 0.1), 1.0, 1.0)
    (view,) = evaluate(config, {ItemKey("app", "health"): old}, 100.0)
    health = view.items[0]
    assert (health.passing, health.reason, health.lapsed) == (False, Reason.UNCONFIGURED, False)
    assert detail(health, Redactor()).startswith("unconfigured: set I16_BASE_URL")
    assert not view.ready


def test_a_required_placeholder_outside_an_item_is_an_error_with_its_line() -> None:
    text = 'exporter:\n  state: "${I16_DSN:?sqlite:///x.db}"\n' + TEXT
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert "c.yaml:2: environment variable I16_DSN is not set" in str(caught.value)


def test_a_bad_example_is_still_a_config_error() -> None:
    text = TEXT.replace("http://127.0.0.1:8000}/health", "not a url}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert "c.yaml:9: item health: http.url" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("id: ${I16_NAME:?db-up}", "id"),
        ("severity: ${I16_NAME:?critical}", "severity"),
        ('depends_on: ["${I16_NAME:?health}"]', "depends_on[0]"),
        ("every: ${I16_NAME:?1d}", "every"),
        ('expect: ["free > ${I16_NAME:?0}"]', "expect[0]"),
        ('"${I16_NAME:?runbook_url}": https://wiki/x', "a key"),
    ],
)
@pytest.mark.parametrize("variable", [None, "set"])
def test_a_required_placeholder_outside_the_probe_settings_is_an_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, line: str, field: str, variable: str | None
) -> None:
    """Only a target waits for its variable: elsewhere in an item the example would silently
    become the item's id, severity, dependency, period or condition."""
    if variable is not None:
        monkeypatch.setenv("I16_NAME", variable)
    text = TEXT.replace(
        "            disk: {path: /}", f"            disk: {{path: /}}\n            {line}"
    )
    if line.startswith("id:"):
        text = text.replace("          - id: disk\n            title", "          - title")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    messages = [str(i) for i in caught.value.issues]
    assert len(messages) == 1, messages
    number = text.splitlines().index(f"            {line}") + 1
    assert messages[0].startswith(f"c.yaml:{number}: item ")
    assert (
        f": {field}: ${{I16_NAME:?...}} (a required placeholder) belongs in the probe's"
        in messages[0]
    )
