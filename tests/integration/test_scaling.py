"""Replicas and shards on one real PostgreSQL database (127.0.0.1:5432, a fresh one
dropped after), configured as the deployments configure them: the state URL comes from
READINESS_STATE in the environment (the Kubernetes Secret, the systemd env file), overriding
the file's SQLite line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from exporter.shard import owner
from tests.support.api import post_attestation
from tests.support.exporter import Exporter

pytestmark = pytest.mark.slow

TOKEN = "issue8-attest-0123456789abcdef"
FIRST, SECOND = "payments", "identity"  # shard 0/2 and shard 1/2


def write_config(tmp_path: Path) -> Path:
    checklists = "".join(
        f"""
  - name: {name}
    sections:
      - name: ops
        items:
          - id: on-call
            title: On-call rotation established
            manual: {{}}
            every: 30d
"""
        for name in (FIRST, SECOND)
    )
    path = tmp_path / "readiness.yaml"
    path.write_text(f"""
exporter:
  state: "sqlite:///{tmp_path}/not-used.db"
  api_tokens:
    - {{name: oncall, token_env: I8_ATTEST_TOKEN, roles: [attest, read]}}
checklists:{checklists}""")
    return path


def attest(exporter: Exporter, checklist: str, by: str) -> httpx.Response:
    return post_attestation(exporter, TOKEN, checklist=checklist, item="on-call", by=by)


def on_call(exporter: Exporter, checklist: str) -> float | None:
    return exporter.value("readiness_item_passing", checklist=checklist, item="on-call")


def test_replicas_and_shards_share_one_postgresql_state(tmp_path: Path, database: str) -> None:
    assert (owner(FIRST, 2), owner(SECOND, 2)) == (0, 1)
    config = write_config(tmp_path)
    env = {"READINESS_STATE": database, "I8_ATTEST_TOKEN": TOKEN}
    replica_a, replica_b, other_shard = (
        Exporter(config, env=env, args=("--shard", shard)) for shard in ("0/2", "0/2", "1/2")
    )
    started: list[Exporter] = []
    try:
        for exporter in (replica_a, replica_b, other_shard):
            exporter.start()
            started.append(exporter)
        assert not (tmp_path / "not-used.db").exists(), "READINESS_STATE must win over the file"

        # An attestation made through one replica is served by the other at its next scrape.
        assert on_call(replica_b, FIRST) == 0.0
        response = attest(replica_a, FIRST, "alice")
        assert response.status_code == 201, response.text
        assert on_call(replica_b, FIRST) == 1.0
        assert on_call(replica_a, FIRST) == 1.0

        # The other shard neither shows nor accepts this shard's checklist, and vice versa.
        assert on_call(other_shard, FIRST) is None
        assert on_call(replica_a, SECOND) is None
        assert attest(replica_a, SECOND, "bob").status_code == 404
        assert attest(other_shard, SECOND, "bob").status_code == 201
        assert on_call(other_shard, SECOND) == 1.0

        # Re-sharding (here: to one exporter) keeps every checklist's history in the database.
        other_shard.stop()
        started.remove(other_shard)
        whole = Exporter(config, env=env)
        whole.start()
        started.append(whole)
        assert on_call(whole, FIRST) == 1.0
        assert on_call(whole, SECOND) == 1.0
    finally:
        for exporter in started:
            if exporter.proc is not None:
                exporter.stop()
