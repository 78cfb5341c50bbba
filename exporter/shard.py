"""Which checklists one exporter of several runs: `--shard i/n`, stable across restarts and hosts.

Rendezvous (highest-random-weight) hashing of the checklist name with SHA-256, never Python's
salted `hash()`: every process computes the same owner, and going from n to n+1 shards moves
only the checklists the new shard wins (about 1/(n+1) of them) instead of reshuffling all."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Types only: the CLI parses --shard before it loads any config.
    from exporter.loader import LoadedConfig

_SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/n` with 0 <= i < n, e.g. `0/2` and `1/2` for two exporters."""
        match = _SHARD.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a shard: write INDEX/COUNT, e.g. 0/2")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise ValueError(
                f"shard {text!r} is out of range: INDEX counts from 0 and must be below COUNT "
                f"(e.g. 0/{max(count, 2)} .. {max(count, 2) - 1}/{max(count, 2)})"
            )
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, checklist: str) -> bool:
        return self.count == 1 or owner(checklist, self.count) == self.index

    def select(self, loaded: LoadedConfig) -> LoadedConfig:
        """The config with only this shard's checklists (possibly none)."""
        from exporter.loader import LoadedConfig

        if self.count == 1:
            return loaded
        mine = tuple(c for c in loaded.config.checklists if self.owns(c.name))
        # model_copy skips the "at least one checklist" rule: an empty shard is valid.
        config = loaded.config.model_copy(update={"checklists": mine})
        return LoadedConfig(config, loaded.path, loaded.secrets)


ALL = Shard(0, 1)
"""The one shard that owns everything: an exporter that is not sharded."""


def owner(checklist: str, count: int) -> int:
    """The index of the shard, of `count`, that runs `checklist`."""
    return max(range(count), key=lambda i: _weight(checklist, i))


def _weight(checklist: str, index: int) -> int:
    digest = hashlib.sha256(f"{index}\0{checklist}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
