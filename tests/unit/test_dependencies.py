"""`depends_on`: which failing items are blocked, how every view says so, and the graph checks
(an unknown item, a cycle) at load."""

from __future__ import annotations

import pytest

from exporter.dependencies import resolve
from exporter.evaluate import ChecklistView, evaluate
from exporter.loader import ConfigError, parse_config
from exporter.reasons import Reason
from exporter.redact import Redactor
from exporter.render import markdown, table
from exporter.results import ItemKey, ItemState, Result
from exporter.web.pages import status_page
from exporter.web.status import status_document

NOW = 1_800_000_000.0
TEXT = """
checklists:
  - name: db
    sections:
      - name: postgres
        items:
          - id: postgres-up
            title: PostgreSQL running
            severity: critical
            tcp: {host: 127.0.0.1, port: 5432}
          - id: tables
            title: Tables created
            depends_on: [postgres-up]
            tcp: {host: 127.0.0.1, port: 5432}
          - id: indexes
            title: Indexes created
            depends_on: [tables]
            tcp: {host: 127.0.0.1, port: 5432}
  - name: app
    sections:
      - name: api
        items:
          - id: orders
            title: Orders endpoint
            depends_on: [db/postgres-up]
            http: {url: "http://127.0.0.1:8000/orders"}
"""


def run(passing: bool) -> ItemState:
    reason = Reason.OK if passing else Reason.CONNECT
    return ItemState(Result(passing, reason, NOW - 5, 0.01), NOW - 5 if passing else None, NOW)


def views(**passing: bool) -> dict[str, ChecklistView]:
    config = parse_config(TEXT).config
    keys = {"orders": ItemKey("app", "orders")}
    states = {
        keys.get(name, ItemKey("db", name.replace("_", "-"))): run(p) for name, p in passing.items()
    }
    return {v.checklist.name: v for v in evaluate(config, states, NOW)}


def blocked(found: dict[str, ChecklistView]) -> dict[str, tuple[str, ...]]:
    return {v.item.id: tuple(str(k) for k in v.blocked_by) for c in found.values() for v in c.items}


def test_failing_dependents_of_a_failing_root_are_blocked_by_it() -> None:
    found = views(postgres_up=False, tables=False, indexes=False, orders=False)
    assert blocked(found) == {
        "postgres-up": (),
        "tables": ("db/postgres-up",),
        "indexes": ("db/tables",),  # its own dependency, not the root: each says what it needs
        "orders": ("db/postgres-up",),
    }
    # Blocked is still not passing: the score and the verdict count it.
    assert found["db"].score == 0 and not found["db"].ready


def test_a_passing_dependent_or_a_passing_root_blocks_nothing() -> None:
    assert blocked(views(postgres_up=False, tables=True, indexes=True, orders=True)) == {
        "postgres-up": (),
        "tables": (),
        "indexes": (),
        "orders": (),
    }
    # The root is back; the dependent that still fails is failing on its own account.
    assert blocked(views(postgres_up=True, tables=False, indexes=False))["tables"] == ()


def test_a_dependency_that_has_not_run_blocks() -> None:
    assert blocked(views(tables=False))["tables"] == ("db/postgres-up",)


def test_every_view_says_blocked_and_by_what() -> None:
    found = list(views(postgres_up=False, tables=False, indexes=False, orders=False).values())
    text = table(found, redactor=Redactor())
    line = next(x for x in text.splitlines() if x.split()[4:5] == ["tables"])  # the ITEM column
    assert line.startswith("FAIL") and "connect: blocked by postgres-up" in line
    orders = next(x for x in text.splitlines() if x.split()[4:5] == ["orders"])
    assert "blocked by db/postgres-up" in orders
    assert "- [ ] Tables created — connect: blocked by postgres-up" in markdown(
        found, NOW, redactor=Redactor()
    )
    items = status_document(found, NOW, Redactor())["checklists"][0]["sections"][0]["items"]
    assert items[1]["blocked"] is True and items[1]["blocked_by"] == ["db/postgres-up"]
    assert items[1]["depends_on"] == ["postgres-up"]
    assert "blocked" not in items[0]
    page = status_page(found, NOW, redactor=Redactor())
    assert page.count("aria-label='blocked'") == 3  # tables, indexes and orders; not the root
    assert "connect: blocked by postgres-up" in page


def test_references_resolve_within_or_across_checklists() -> None:
    assert resolve("db", "tables") == ItemKey("db", "tables")
    assert resolve("db", "app/orders") == ItemKey("app", "orders")


def chain(length: int, closed: bool) -> str:
    links = "".join(
        f"\n          - id: i{n}\n            title: I{n}\n            disk: {{path: /}}"
        f"\n            depends_on: [i{(n + 1) % length}]"
        if n < length - 1 or closed
        else f"\n          - id: i{n}\n            title: I{n}\n            disk: {{path: /}}"
        for n in range(length)
    )
    return f"checklists:\n  - name: c\n    sections:\n      - name: s\n        items:{links}"


def test_a_long_chain_loads_and_a_long_cycle_is_found_once() -> None:
    # Iterative: 3,000 links do not exhaust the recursion limit.
    parse_config(chain(3000, closed=False))
    with pytest.raises(ConfigError) as caught:
        parse_config(chain(3000, closed=True), "c.yaml")
    (issue,) = caught.value.issues
    assert "depends_on: a cycle, c/i0 -> c/i1 -> " in issue.message
    assert issue.message.endswith("c/i2999 -> c/i0: remove one of these dependencies")


@pytest.mark.parametrize(
    ("depends_on", "message"),
    [
        ("[Bad Name]", "depends_on[0]: 'Bad Name' is not ITEM or CHECKLIST/ITEM (e.g. [postgres-"),
        ("[db/]", "depends_on[0]: 'db/' is not ITEM or CHECKLIST/ITEM"),
        ("postgres-up", "depends_on: expected a list of ITEM or CHECKLIST/ITEM (e.g. "),
        ("{a: 1}", "depends_on: expected a list of ITEM or CHECKLIST/ITEM"),
    ],
)
def test_a_malformed_reference_is_an_error_with_its_line(depends_on: str, message: str) -> None:
    text = TEXT.replace("depends_on: [postgres-up]", f"depends_on: {depends_on}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    (issue,) = caught.value.issues
    assert str(issue).startswith("c.yaml:13: item tables: ") and message in str(issue)


def test_an_unconfigured_dependent_is_unconfigured_not_blocked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("I16_DSN", raising=False)
    text = TEXT.replace(
        "depends_on: [postgres-up]\n            tcp: {host: 127.0.0.1, port: 5432}",
        'depends_on: [postgres-up]\n            postgres: {dsn: "${I16_DSN:?postgresql://x@h/db}"}',
    )
    config = parse_config(text).config
    states = {ItemKey("db", "postgres-up"): run(False)}
    (db, _) = evaluate(config, states, NOW)
    tables = db.items[1]
    assert (tables.reason, tables.blocked) == (Reason.UNCONFIGURED, False)
