"""`depends_on:` as a graph: references resolved to item keys, the config's mistakes (unknown
items, cycles) found once at load, and which failing items are blocked by a dependency that is
not passing. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.results import ItemKey

if TYPE_CHECKING:
    from exporter.config import Config


SHOWN_LOOP = 12
"""Items of a cycle an error names before it shortens the loop."""


def resolve(checklist: str, reference: str) -> ItemKey:
    """`ITEM` names an item of the same checklist, `CHECKLIST/ITEM` one of any checklist."""
    other, slash, item = reference.partition("/")
    return ItemKey(other, item) if slash else ItemKey(checklist, reference)


@dataclass(frozen=True)
class GraphIssue:
    """A `depends_on` entry that cannot stand, by position: checklist, section, item and entry
    indexes, so the loader can name its line."""

    where: tuple[int, int, int, int]
    item: str
    message: str


def graph_issues(config: Config) -> Iterator[GraphIssue]:
    """Unknown references, an item depending on itself, and cycles (each reported once, at the
    entry that closes it, with the whole loop)."""
    known = {ItemKey(c.name, i.id) for c in config.checklists for s in c.sections for i in s.items}
    edges: dict[ItemKey, list[tuple[ItemKey, tuple[int, int, int, int]]]] = {}
    for ci, checklist in enumerate(config.checklists):
        for si, section in enumerate(checklist.sections):
            for ii, item in enumerate(section.items):
                key = ItemKey(checklist.name, item.id)
                for di, reference in enumerate(item.depends_on):
                    target = resolve(checklist.name, reference)
                    where = (ci, si, ii, di)
                    if target == key:
                        yield GraphIssue(
                            where, item.id, "depends_on: an item cannot depend on itself"
                        )
                    elif target not in known:
                        yield GraphIssue(
                            where,
                            item.id,
                            f"depends_on[{di}]: no item '{reference}'"
                            + ("" if "/" in reference else f" in checklist '{checklist.name}'")
                            + " (write ITEM for this checklist, CHECKLIST/ITEM for another)",
                        )
                    else:
                        edges.setdefault(key, []).append((target, where))
    yield from _cycles(edges)


def _cycles(
    edges: Mapping[ItemKey, list[tuple[ItemKey, tuple[int, int, int, int]]]],
) -> Iterator[GraphIssue]:
    """Depth-first, iteratively (a long chain must not exhaust Python's recursion)."""
    done: set[ItemKey] = set()
    for start in edges:
        if start in done:
            continue
        path: list[ItemKey] = [start]
        on_path = {start}
        stack = [iter(edges.get(start, ()))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
                continue
            target, where = step
            if target in on_path:
                loop = [str(k) for k in (*path[path.index(target) :], target)]
                if len(loop) > SHOWN_LOOP:  # a message, not a dump of a 3,000-item chain
                    loop = [*loop[:5], f"... ({len(loop) - 8} more)", *loop[-3:]]
                yield GraphIssue(
                    where,
                    path[-1].item,
                    f"depends_on: a cycle, {' -> '.join(loop)}: remove one of these dependencies",
                )
            elif target not in done:
                path.append(target)
                on_path.add(target)
                stack.append(iter(edges.get(target, ())))


def blocked_by(
    checklist: str, depends_on: tuple[str, ...], passing: Callable[[ItemKey], bool | None]
) -> tuple[ItemKey, ...]:
    """The dependencies of a failing item that are not passing: it is blocked by them. A
    dependency whose state is unknown here (`passing` gives None: another shard's item) does
    not block."""
    return tuple(
        key for reference in depends_on if passing(key := resolve(checklist, reference)) is False
    )
