"""Sharded exporters on one config: together they expose every item exactly once."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_cli as run
from tests.support.exporter import Exporter, wait_for

pytestmark = pytest.mark.slow

TEAMS = ["payments", "search", "checkout", "billing", "identity", "inventory", "shipping", "ledger"]


def write_config(path: Path, teams: list[str]) -> Path:
    (path.parent / "marker").write_text("present")
    checklists = "".join(
        f"""
  - name: {team}
    sections:
      - name: basics
        items:
          - id: marker-present
            title: Marker file present
            interval: 1s
            file: {{path: "{path.parent}/marker"}}
          - id: on-call
            title: On-call rotation established
            manual: {{}}
"""
        for team in teams
    )
    path.write_text(f"checklists:{checklists}")
    return path


@pytest.fixture
def shards(tmp_path: Path) -> Iterator[list[Exporter]]:
    config = write_config(tmp_path / "readiness.yaml", TEAMS)
    exporters = [
        Exporter(
            config,
            env={"READINESS_STATE": f"sqlite:///{tmp_path}/state-{i}.db"},
            args=("--shard", f"{i}/2"),
        )
        for i in range(2)
    ]
    try:
        for exporter in exporters:
            exporter.start()
        yield exporters
    finally:
        for exporter in exporters:
            if exporter.proc is not None:
                exporter.stop()


def exposed(exporter: Exporter, metric: str) -> list[tuple[str, str]]:
    return [
        (labels["checklist"], labels.get("item", ""))
        for (name, label_set), _ in exporter.samples().items()
        if name == metric
        for labels in [dict(label_set)]
    ]


def test_two_shards_expose_every_item_exactly_once(shards: list[Exporter]) -> None:
    everything = {(team, item) for team in TEAMS for item in ("marker-present", "on-call")}

    def passing_everywhere() -> Counter[tuple[str, str]] | None:
        seen = Counter(key for e in shards for key in exposed(e, "readiness_item_passing"))
        probed = [
            e.value("readiness_item_passing", checklist=team, item="marker-present")
            for e in shards
            for team in TEAMS
        ]
        return seen if probed.count(1.0) == len(TEAMS) else None

    seen = wait_for(passing_everywhere, 15, "every probed item to pass on its shard")
    assert set(seen) == everything
    assert set(seen.values()) == {1}, [k for k, n in seen.items() if n > 1]
    per_shard = [{c for c, _ in exposed(e, "readiness_item_info")} for e in shards]
    assert all(per_shard), f"one shard runs nothing: {per_shard}"
    assert per_shard[0].isdisjoint(per_shard[1])
    scores = Counter(c for e in shards for c, _ in exposed(e, "readiness_checklist_score_ratio"))
    assert scores == Counter(TEAMS)


def test_reload_keeps_the_shard(shards: list[Exporter]) -> None:
    write_config(shards[0].config, [*TEAMS, "gateway", "catalog"])
    for exporter in shards:
        assert exporter.proc is not None
        exporter.proc.send_signal(signal.SIGHUP)

    def both_new_placed() -> Counter[str] | None:
        seen = Counter(c for e in shards for c, _ in exposed(e, "readiness_checklist_score_ratio"))
        return seen if {"gateway", "catalog"} <= set(seen) else None

    seen = wait_for(both_new_placed, 10, "the reloaded config's new checklists to appear")
    assert seen == Counter([*TEAMS, "gateway", "catalog"])


def test_check_runs_only_its_shard_and_rejects_a_bad_one(tmp_path: Path) -> None:
    config = write_config(tmp_path / "readiness.yaml", TEAMS)
    env = {"READINESS_STATE": f"sqlite:///{tmp_path}/state.db"}
    names = []
    for i in range(2):
        result = run(
            "check",
            "--config",
            str(config),
            "--no-serve",
            "--shard",
            f"{i}/2",
            "--format",
            "markdown",
            env=env,
        )
        names.append({t for t in TEAMS if t in result.stdout})
    assert names[0] and names[1]
    assert names[0].isdisjoint(names[1])
    assert names[0] | names[1] == set(TEAMS)

    bad = run("check", "--config", str(config), "--shard", "2/2", env=env)
    assert bad.returncode == 2
    assert "out of range" in bad.stderr
    from_env = run("serve", "--config", str(config), env={**env, "READINESS_SHARD": "x"})
    assert from_env.returncode == 2
    assert "not a shard" in from_env.stderr
