"""`import --update FILE`: a re-import of a changed document into a config edited by hand since
the last import. The document decides which items there are, in which sections and order; the
file decides what each item that is still there says. Works on the text, so comments and
formatting of the kept parts stay as the user left them."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

REMOVED_MARKER = "# --- Items no longer in the document"

_ITEM = re.compile(r"^(?P<pad>[ ]*)- id:[ ]*(?P<id>\S.*?)[ ]*$")
_EXPORTER = re.compile(r"^exporter:")
_CHECKLISTS = re.compile(r"^checklists:")
_CHECKLIST = re.compile(r"^  - name:")
_SECTIONS = re.compile(r"^    sections:")


class UpdateError(ValueError):
    """The file cannot be updated as it is (say why and what to do)."""


@dataclass(frozen=True)
class Updated:
    text: str
    kept: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class _Block:
    id: str
    indent: int
    first: int
    stop: int


def _id(raw: str) -> str:
    return str(yaml.safe_load(raw))


def _blocks(lines: list[str]) -> list[_Block]:
    """Each item's lines: its `- id:` line to the next line as shallow as it, with the comment
    lines right above it (a note a user put over an item belongs to that item)."""
    starts = [(n, m) for n, line in enumerate(lines) if (m := _ITEM.match(line))]
    out = []
    for index, (n, match) in enumerate(starts):
        indent = len(match["pad"])
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        stop = next(
            (
                k
                for k in range(n + 1, end)
                if lines[k].strip()
                and (
                    _indent(lines[k]) < indent
                    or (_indent(lines[k]) == indent and not _comment(lines[k]))
                )
            ),
            end,
        )
        while stop > n + 1 and (
            not lines[stop - 1].strip() or _comment_at(lines[stop - 1], indent)
        ):
            stop -= 1
        first = n
        while first > 0 and _comment_at(lines[first - 1], indent):
            first -= 1
        out.append(_Block(_id(match["id"]), indent, first, stop))
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _comment_at(line: str, indent: int) -> bool:
    return (
        _comment(line) and _indent(line) >= indent and not line.lstrip().startswith(REMOVED_MARKER)
    )


def _shifted(lines: list[str], delta: int) -> list[str]:
    if delta >= 0:
        return [(" " * delta + line) if line.strip() else line for line in lines]
    return [line[-delta:] if line[:-delta].strip() == "" else line.lstrip() for line in lines]


def _span(lines: list[str], start: re.Pattern[str], stop: re.Pattern[str]) -> range | None:
    """The lines from the first match of `start` (after `checklists:` for a checklist's own
    lines, so an `api_tokens` list is never taken for one) up to the first match of `stop`."""
    begin = 0
    if start is _CHECKLIST:
        begin = next((n for n, line in enumerate(lines) if _CHECKLISTS.match(line)), len(lines))
    first = next((n for n in range(begin, len(lines)) if start.match(lines[n])), None)
    if first is None:
        return None
    last = next((n for n in range(first + 1, len(lines)) if stop.match(lines[n])), None)
    return range(first, last) if last is not None else None


def update(old: str, new: str, source: str, prune: bool) -> Updated:
    """`new` (a fresh import) with the file's own `exporter:` block, checklist settings and
    items: kept where their id is still in the document, added where new, and the rest listed,
    and kept at the end commented out unless `prune`."""
    try:
        yaml.safe_load(old)
    except yaml.YAMLError as exc:
        raise UpdateError(f"is not valid YAML ({exc}): fix it first, or import with -o") from None
    old_lines = old.splitlines()
    mine = {b.id: b for b in _blocks(old_lines)}
    if not mine:
        raise UpdateError("has no items (`- id: ...`): is it a config written by import?")
    fresh = _settings(old_lines, new.splitlines())
    result: list[str] = []
    kept, added = [], []
    at = 0
    for block in _blocks(fresh):
        result += fresh[at : block.first]
        own = mine.get(block.id)
        if own is None:
            result += fresh[block.first : block.stop]
            added.append(block.id)
        else:
            result += _shifted(old_lines[own.first : own.stop], block.indent - own.indent)
            kept.append(block.id)
        at = block.stop
    result += fresh[at:]
    seen = set(kept) | set(added)
    removed = [b for b in mine.values() if b.id not in seen]
    carried = [] if prune else _carried(old_lines)
    if removed and not prune:
        if not carried:
            carried += [
                f"{REMOVED_MARKER} since it was imported: kept here, commented out;",
                "# `import --update --prune` drops them. Uncomment one to keep it as an item.",
            ]
        carried.append(f"# from the import --update of {source}:")
        for b in removed:
            carried += [
                "# " + line[b.indent :] if line.strip() else "#"
                for line in old_lines[b.first : b.stop]
            ]
    text = "\n".join(result).rstrip() + "\n"
    if carried:
        text += "\n" + "\n".join(carried) + "\n"
    return Updated(text, tuple(kept), tuple(added), tuple(b.id for b in removed))


def checklist_name(old: str) -> str | None:
    """The name the file gives its checklist (a re-import keeps it, as the state is keyed by
    it), or None."""
    try:
        doc = yaml.safe_load(old)
        name = doc["checklists"][0]["name"]
    except (yaml.YAMLError, LookupError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _settings(old: list[str], new: list[str]) -> list[str]:
    """The fresh import, with the file's `exporter:` block and the checklist's own settings
    (go_live, ready_min_score, a title edited by hand) where the file has them."""
    out = list(new)
    for start, stop in ((_EXPORTER, _CHECKLISTS), (_CHECKLIST, _SECTIONS)):
        mine = _span(old, start, stop)
        theirs = _span(out, start, stop)
        if mine is not None and theirs is not None:
            out[theirs.start : theirs.stop] = old[mine.start : mine.stop]
    return out


def _carried(old: list[str]) -> list[str]:
    """What an earlier `--update` kept at the end of the file: items removed before."""
    marker = next((n for n, line in enumerate(old) if line.startswith(REMOVED_MARKER)), None)
    return [] if marker is None else [line for line in old[marker:] if line.strip()]
