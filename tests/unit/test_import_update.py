"""`import --update`: the merge of a fresh import into an edited config, on the text."""

from __future__ import annotations

import pytest
import yaml

from exporter.importing.update import (
    IMPORTED_MARK,
    REMOVED_MARKER,
    UpdateError,
    checklist_name,
    update,
)


def config(*items: str, state: str = "sqlite:///./x-state.db") -> str:
    body = "".join(items)
    return (
        "# header\n"
        f"exporter:\n  state: {state}\n\n"
        "checklists:\n  - name: x\n    title: X\n    sections:\n"
        "      - name: ops\n        title: Ops\n        items:\n" + body
    )


def item(id_: str, *extra: str, mark: str = f"  {IMPORTED_MARK}") -> str:
    """An item as import writes it (with the mark), or as a user adds it (mark="")."""
    lines = [f"          - id: {id_}{mark}\n", f"            title: {id_.title()}\n"]
    lines += [f"            {line}\n" for line in extra]
    return "".join(lines) + "            manual: {}\n"


def test_kept_items_keep_their_lines_and_comments_new_ones_come_from_the_import() -> None:
    old = config(
        "          # owner: ops\n",
        item("a", "severity: critical", "# a note inside"),
        item("b"),
        state="sqlite:////var/lib/mine.db",
    )
    new = config(item("a"), item("c"), item("b"))
    done = update(old, new, "doc.md", prune=False)
    assert (done.kept, done.added, done.removed) == (("a", "b"), ("c",), ())
    assert "state: sqlite:////var/lib/mine.db" in done.text
    assert "          # owner: ops\n          - id: a  # imported\n" in done.text
    assert "            # a note inside\n" in done.text
    items = yaml.safe_load(done.text)["checklists"][0]["sections"][0]["items"]
    assert [i["id"] for i in items] == ["a", "c", "b"]
    assert items[0]["severity"] == "critical"


def test_removed_items_are_kept_commented_once_per_update_and_pruned_on_request() -> None:
    old = config(item("a"), item("b"), item("gone", "severity: info"))
    first = update(old, config(item("a"), item("b")), "doc.md", prune=False)
    assert first.removed == ("gone",)
    assert first.text.count(REMOVED_MARKER) == 1
    removed = "# - id: gone  # imported\n#   title: Gone\n#   severity: info\n#   manual: {}\n"
    assert removed in first.text
    yaml.safe_load(first.text)  # still a valid file

    second = update(first.text, config(item("a")), "doc.md", prune=False)
    assert second.removed == ("b",)
    assert second.text.count(REMOVED_MARKER) == 1  # one list, both items on it
    assert "# - id: gone" in second.text and "# - id: b" in second.text
    assert [i["id"] for i in _items(second.text)] == ["a"]

    pruned = update(second.text, config(item("a")), "doc.md", prune=True)
    assert REMOVED_MARKER not in pruned.text and "gone" not in pruned.text


def test_a_block_indented_otherwise_is_moved_to_the_imports_indent() -> None:
    # An editor that re-indented the file: the list flush with `items:`.
    old = config() + "        - id: a\n          title: A\n          severity: critical\n"
    old += "          manual: {}\n"
    assert _items(old)[0]["severity"] == "critical"
    done = update(old, config(item("a")), "doc.md", prune=False)
    moved = "          - id: a  # imported\n            title: A\n            severity: critical\n"
    assert moved in done.text
    assert _items(done.text)[0]["severity"] == "critical"


def test_items_added_by_hand_stay_after_the_item_they_followed_or_first_in_their_section() -> None:
    old = config(
        item("mine-first", mark=""),
        item("a"),
        item("gone"),
        item("mine-after-gone", mark=""),
        "          - {id: mine-flow, title: Flow, manual: {}}\n",
    )
    old += "      - name: empty\n        title: Empty\n        items:\n"
    old += "          - {id: mine-in-empty, title: E, manual: {}}\n"
    new = config(item("new"), item("a")) + "      - name: empty\n        title: Empty\n"
    new += "        items: []\n"
    done = update(old, new, "doc.md", prune=False)
    assert (done.kept, done.added, done.removed) == (("a",), ("new",), ("gone",))
    assert done.own == ("mine-first", "mine-after-gone", "mine-flow", "mine-in-empty")
    sections = yaml.safe_load(done.text)["checklists"][0]["sections"]
    assert [[i["id"] for i in s["items"]] for s in sections] == [
        ["mine-first", "new", "a", "mine-after-gone", "mine-flow"],
        ["mine-in-empty"],
    ]
    assert "          - id: mine-first\n" in done.text  # not marked: still the user's
    assert update(done.text, new, "doc.md", prune=False).text == done.text  # settled


def test_a_file_written_before_the_mark_counts_every_item_as_imported() -> None:
    old = config(item("a", mark=""), item("b", mark=""))
    done = update(old, config(item("a")), "doc.md", prune=False)
    assert (done.kept, done.removed, done.own) == (("a",), ("b",), ())
    assert "          - id: a  # imported\n" in done.text  # marked from now on


def _items(text: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = yaml.safe_load(text)["checklists"][0]["sections"][0]["items"]
    return items


@pytest.mark.parametrize(
    ("old", "message"),
    [
        ("a: [unclosed", "is not valid YAML"),
        ("exporter: {}\n", "has no items"),
        (config(item("a")) + "  - name: mine\n    sections: []\n", "has 2 checklists"),
        (
            config(
                item("a"), "          - title: Mine\n            id: mine\n            manual: {}\n"
            ),
            "line 15: an item that does not start with `- id:`",
        ),
    ],
)
def test_a_file_that_cannot_be_updated_says_why(old: str, message: str) -> None:
    with pytest.raises(UpdateError, match=message):
        update(old, config(item("a")), "doc.md", prune=False)


def test_exporter_block_and_checklist_settings_stay_as_the_file_has_them() -> None:
    tokens = "  api_tokens:\n  - name: oncall\n    token_env: ONCALL_TOKEN\n    roles: [attest]\n"
    old = config(item("a")).replace("exporter:\n", "exporter:\n" + tokens)
    old = old.replace("    title: X\n", "    title: X\n    ready_min_score: 0.9\n")
    done = update(old, config(item("a")), "doc.md", prune=False)
    doc = yaml.safe_load(done.text)
    assert doc["exporter"]["api_tokens"][0]["name"] == "oncall"
    assert doc["checklists"][0]["ready_min_score"] == 0.9
    assert done.text.count("  - name: oncall") == 1


def test_the_checklist_keeps_the_name_the_file_gives_it() -> None:
    assert checklist_name(config(item("a")).replace("name: x", "name: renamed")) == "renamed"
    assert checklist_name("not: [a config") is None
