"""`import --update FILE`: a re-import of a changed document into a config edited by hand since
the last import. The document decides which items there are, in which sections and order; the
file decides what each item that is still there says. Works on the text, so comments and
formatting of the kept parts stay as the user left them."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

REMOVED_MARKER = "# --- Items no longer in the document"
# On the `- id:` line of every item an import wrote: the items the document gave. An item
# without it was added by hand, and an update leaves it where it is.
IMPORTED_MARK = "# imported"

_ITEM = re.compile(r"^(?P<pad>[ ]*)- (?P<item>id:.*|\{.*)$")
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
    own: tuple[str, ...] = ()  # added to the file by hand: left as they are


@dataclass(frozen=True)
class _Block:
    id: str
    indent: int
    at: int  # its `- id:` line
    first: int
    stop: int
    imported: bool


def _id(raw: str) -> str | None:
    """The id of the item whose first line is `- RAW` (`id: X` or a one-line `{id: X, ...}`)."""
    try:
        item = yaml.safe_load(raw)
    except yaml.YAMLError:
        return None
    return str(item["id"]) if isinstance(item, dict) and "id" in item else None


def _blocks(lines: list[str]) -> list[_Block]:
    """Each item's lines: its `- id:` line to the next line as shallow as it, with the comment
    lines right above it (a note a user put over an item belongs to that item)."""
    starts = [
        (n, m, id_)
        for n, line in enumerate(lines)
        if (m := _ITEM.match(line)) and (id_ := _id(m["item"])) is not None
    ]
    out = []
    for index, (n, match, id_) in enumerate(starts):
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
        imported = lines[n].rstrip().endswith(IMPORTED_MARK)
        out.append(_Block(id_, indent, n, first, stop, imported))
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
    items: kept where their id is still in the document, added where new, left where they are
    when added by hand (no IMPORTED_MARK), and the rest (imported once, no longer in the
    document) listed, and kept at the end commented out unless `prune`."""
    try:
        doc = yaml.safe_load(old)
    except yaml.YAMLError as exc:
        raise UpdateError(f"is not valid YAML ({exc}): fix it first, or import with -o") from None
    checklists = doc.get("checklists") if isinstance(doc, dict) else None
    if isinstance(checklists, list) and len(checklists) > 1:
        raise UpdateError(
            f"has {len(checklists)} checklists: an update works on the one an import wrote;"
            " keep the others in a file of their own"
        )
    old_lines = old.splitlines()
    old_blocks = _blocks(old_lines)
    if not old_blocks:
        raise UpdateError("has no items (`- id: ...`): is it a config written by import?")
    sections = _sections(old)
    starts = {b.at for b in old_blocks}
    unknown = [n for s in sections for n in s.item_lines if n not in starts]
    if unknown:
        raise UpdateError(
            f"line {unknown[0] + 1}: an item that does not start with `- id:` (nor is one line"
            " `- {id: ...}`): move its id first, so its lines are known and kept"
        )
    mine = {b.id: b for b in old_blocks}
    fresh = _settings(old_lines, new.splitlines())
    fresh_blocks = _blocks(fresh)
    in_document = {b.id for b in fresh_blocks}
    # A file written before imports marked their items: every item in it came from one.
    marked = any(b.imported for b in old_blocks)
    removed = [b for b in old_blocks if b.id not in in_document and (b.imported or not marked)]
    own = _Own(old_lines, sections, old_blocks, {b.id for b in removed}, in_document)
    fresh_sections = {s.items_at: s.name for s in _sections("\n".join(fresh))}
    result: list[str] = []
    kept, added = [], []
    n = 0
    while n < len(fresh):
        block = next((b for b in fresh_blocks if b.first == n), None)
        if block is None:
            at_start = own.at_start.pop(fresh_sections.get(n, ""), [])
            result.append(fresh[n].replace("items: []", "items:") if at_start else fresh[n])
            own.put(result, at_start, fresh_blocks[0].indent)
            n += 1
            continue
        mine_too = mine.get(block.id)
        if mine_too is None:
            result += fresh[block.first : block.stop]
            added.append(block.id)
        else:
            lines = _shifted(
                old_lines[mine_too.first : mine_too.stop], block.indent - mine_too.indent
            )
            at = mine_too.at - mine_too.first
            if not mine_too.imported:
                lines[at] = f"{lines[at].rstrip()}  {IMPORTED_MARK}"
            result += lines
            kept.append(block.id)
        own.put(result, own.after.pop(block.id, []), block.indent)
        n = block.stop
    result = "\n".join(result).rstrip().splitlines()
    own.put_sections(result, fresh_blocks[0].indent)
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
    text = "\n".join(result) + "\n"
    if carried:
        text += "\n" + "\n".join(carried) + "\n"
    return Updated(text, tuple(kept), tuple(added), tuple(b.id for b in removed), tuple(own.ids))


class _Own:
    """The items added to the file by hand, each to go after the item it followed in its
    section (skipping items the document dropped), or first in its section."""

    def __init__(
        self,
        lines: list[str],
        sections: list[_Section],
        blocks: list[_Block],
        removed: set[str],
        in_document: set[str],
    ) -> None:
        self.lines, self.sections = lines, sections
        section_of = {at: s for s in self.sections for at in s.item_lines}
        self.after: dict[str, list[_Block]] = {}
        self.at_start: dict[str, list[_Block]] = {}
        self.ids: list[str] = []
        before: dict[str, str] = {}  # section -> the last item placed in it
        for block in blocks:
            section = section_of.get(block.at)
            if block.id in removed or section is None:
                continue
            follows = before.get(section.name)
            before[section.name] = block.id
            if block.id in in_document:
                continue
            self.ids.append(block.id)
            if follows is None:
                self.at_start.setdefault(section.name, []).append(block)
            else:
                self.after.setdefault(follows, []).append(block)

    def put(self, out: list[str], blocks: list[_Block], indent: int) -> None:
        for block in blocks:
            out += _shifted(self.lines[block.first : block.stop], indent - block.indent)
            self.put(out, self.after.pop(block.id, []), indent)

    def put_sections(self, out: list[str], indent: int) -> None:
        """The sections the document does not have, with the items added to them by hand."""
        for section in self.sections:
            blocks = self.at_start.pop(section.name, [])
            if blocks:
                head = self.lines[section.start : section.items_at + 1]
                out.append("")
                out += _shifted(head, indent - 4 - _indent(head[0]))
                self.put(out, blocks, indent)


@dataclass(frozen=True)
class _Section:
    name: str
    start: int  # the line of its `- name:`
    items_at: int  # the line of its `items:`
    item_lines: tuple[int, ...]  # the first line of each of its items


def _sections(text: str) -> list[_Section]:
    """The checklists' sections, from the YAML's own structure (the lines are what matter)."""
    out = []
    for checklist in _sequence(_key(yaml.compose(text), "checklists")):
        for section in _sequence(_key(checklist, "sections")):
            name, items = _entry(section, "name"), _entry(section, "items")
            if name is not None and isinstance(name[1], yaml.ScalarNode) and items is not None:
                lines = tuple(i.start_mark.line for i in _sequence(items[1]))
                start, items_at = section.start_mark.line, items[0].start_mark.line
                out.append(_Section(str(name[1].value), start, items_at, lines))
    return out


def _entry(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The key and value nodes of `key` in a mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return None
    return next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)


def _key(node: yaml.Node | None, key: str) -> yaml.Node | None:
    entry = _entry(node, key)
    return None if entry is None else entry[1]


def _sequence(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


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
