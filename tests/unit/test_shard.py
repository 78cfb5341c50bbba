"""Sharding: `i/n` parsing, and an assignment that is a stable, balanced partition."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from exporter.loader import parse_config
from exporter.shard import ALL, Shard, owner

NAMES = [f"team-{i:04d}" for i in range(2000)]


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", ALL), ("0/2", Shard(0, 2)), ("7/8", Shard(7, 8))]
)
def test_parse_accepts_index_over_count(text: str, shard: Shard) -> None:
    assert Shard.parse(text) == shard
    assert str(Shard.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2/2", "out of range"),
        ("0/0", "out of range"),
        ("-1/2", "not a shard"),
        ("1", "not a shard"),
        ("a/b", "not a shard"),
    ],
)
def test_parse_rejects_what_is_not_a_shard(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)


def test_every_checklist_has_exactly_one_owner() -> None:
    for count in range(1, 6):
        shards = [Shard(i, count) for i in range(count)]
        for name in NAMES[:300]:
            assert sum(s.owns(name) for s in shards) == 1, (name, count)


def test_assignment_is_fixed_across_releases_and_processes() -> None:
    # Golden values: a change here moves checklists between running exporters on upgrade.
    assert [owner(n, 2) for n in ("payments", "search", "identity", "gateway")] == [0, 0, 1, 1]
    assert [owner(n, 3) for n in ("payments", "search", "checkout", "billing")] == [0, 2, 2, 0]
    code = "from exporter.shard import owner; print([owner(f'team-{i:04d}', 5) for i in range(50)])"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "random")
    }
    assert outputs == {f"{[owner(f'team-{i:04d}', 5) for i in range(50)]}\n"}


def test_checklists_spread_evenly() -> None:
    counts = Counter(owner(name, 4) for name in NAMES)
    assert sorted(counts) == [0, 1, 2, 3]
    assert all(400 <= n <= 600 for n in counts.values()), counts


def test_adding_a_shard_moves_only_what_the_new_shard_takes() -> None:
    moved = [n for n in NAMES if owner(n, 3) != owner(n, 4)]
    assert all(owner(n, 4) == 3 for n in moved)
    assert 400 <= len(moved) <= 600  # about a quarter, not three quarters as with modulo


def test_select_keeps_only_owned_checklists_and_may_leave_none() -> None:
    loaded = parse_config(
        "checklists:\n"
        + "".join(
            f"  - name: {n}\n"
            "    sections: [{name: s, items: [{id: i, title: t, manual: {}}]}]\n"
            for n in ("payments", "search", "identity")
        )
    )
    assert [c.name for c in Shard(0, 2).select(loaded).config.checklists] == ["payments", "search"]
    assert [c.name for c in Shard(1, 2).select(loaded).config.checklists] == ["identity"]
    assert ALL.select(loaded) is loaded
    empty = [Shard(i, 8).select(loaded).config.checklists for i in range(8)]
    assert sum(len(c) for c in empty) == 3
    assert () in empty
