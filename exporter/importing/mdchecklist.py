"""Reads a Markdown checklist (`- [ ]` items under headings) into its titles, headings and items.

markdown-it parses the document, so code blocks, block quotes, setext headings and lazy
continuation lines mean what they mean in any Markdown viewer. YAML front matter is set aside
(its `title:` is the document's title). Every heading is kept, with or without
items, so a report can give the document back in its shape. Text that went through a wrong
encoding on the way (`âœ…` for `✅`) is repaired where the repair is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

SEPARATOR = " \u203a "
"""Joins nested headings into one section title; `report` splits on it to restore the nesting.
U+203A, a single right-pointing angle quote: headings rarely contain it, unlike ' / '."""

_CHECKBOX = re.compile(r"^\[([ xX])\](?:[ \t]+|$)(.*)", re.DOTALL)
# Headings that carry no checklist content of their own when they directly follow the title.
_NOT_SUBTITLES = frozenset(
    {"overview", "introduction", "summary", "purpose", "scope", "about", "contents", "notes"}
    | {"table of contents", "toc"}
)
# Jekyll/Hugo front matter: `---` on the first line, YAML, then `---` (or `...`) alone.
FRONT_MATTER_CHARS = 20_000
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
# What cp1252 shows for the bytes 0x80-0x9f, which UTF-8 uses as continuation bytes.
_CP1252_HIGH = bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore")
_MOJIBAKE_RUN = re.compile(f"[\u0080-\u00ff{_CP1252_HIGH}]{{2,}}")


@dataclass(frozen=True)
class Section:
    """A heading and the items right under it (none for an "Overview"); `headings` is the path
    below the title. Items before any heading make a section with no headings."""

    headings: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Item:
    title: str
    """The item's text after the checkbox, as written (Markdown kept), on one line."""
    checked: bool
    line: int
    section: int
    """Index into Document.sections."""
    parent: int | None = None
    """Index into Document.items of the checkbox item this one is nested under."""


@dataclass
class Document:
    title: tuple[str, ...] = ()
    """The document's title heading, plus a subtitle heading right below it when there is one."""
    sections: list[Section] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) when it is; otherwise cp1252, which every byte decodes as."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def repair(text: str) -> str:
    """Undoes UTF-8 read as cp1252 or Latin-1 (`âœ…` → `✅`, `Ã©` → `é`) run by run; a run
    that does not decode back is left alone, and stray replacement characters are dropped."""

    def byte(char: str) -> bytes:
        # cp1252 leaves five bytes undefined; decoders pass those through as U+0080..U+009F.
        try:
            return char.encode("cp1252")
        except UnicodeEncodeError:
            return char.encode("latin-1")

    def fix(match: re.Match[str]) -> str:
        run = match.group(0)
        try:
            return b"".join(byte(c) for c in run).decode("utf-8")
        except UnicodeError:
            return run

    return _MOJIBAKE_RUN.sub(fix, text).replace("\ufffd", "").strip()


def one_line(text: str) -> str:
    return " ".join(text.split())


def parse(text: str) -> Document:
    text, front_title = _front_matter(text)
    tokens = MarkdownIt("commonmark").parse(text)
    headings = [
        (i, int(t.tag[1:]), _heading_text(tokens[i + 1]))
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]
    first_item = next((i for i, t in enumerate(tokens) if _checkbox(tokens, i)), len(tokens))
    title_at = None
    if (
        front_title is None
        and headings
        and headings[0][1] == 1
        and headings[0][0] < first_item
        and sum(level == 1 for _, level, _ in headings) == 1
    ):
        title_at = headings[0][0]

    doc = Document()
    opened_at: list[int] = []  # per section: the token index of its heading (-1: none)
    stack: list[tuple[int, str]] = []  # (level, text) of the headings above the current place
    current: int | None = None  # index of the current section in doc.sections
    items_open: list[int | None] = []  # per open list item: its index in doc.items, if a checkbox
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            level = int(token.tag[1:])
            while stack and stack[-1][0] >= level:
                stack.pop()
            current = None
            if i != title_at:
                stack.append((level, _heading_text(tokens[i + 1])))
                doc.sections.append(Section(tuple(t for _, t in stack), _line(token)))
                opened_at.append(i)
                current = len(doc.sections) - 1
        elif token.type == "list_item_open":
            items_open.append(None)
        elif token.type == "list_item_close":
            items_open.pop()
        elif (checkbox := _checkbox(tokens, i)) is not None:
            if current is None:
                doc.sections.append(Section(tuple(t for _, t in stack), _line(token)))
                opened_at.append(-1)
                current = len(doc.sections) - 1
            checked, title = checkbox
            parent = next((p for p in reversed(items_open[:-1]) if p is not None), None)
            doc.items.append(Item(title, checked, _line(tokens[i + 1]), current, parent))
            items_open[-1] = len(doc.items) - 1
    # A front matter's title is the document's: its headings are all sections then.
    doc.title = (front_title,) if front_title else _title(headings, title_at, doc, opened_at)
    _drop_implied(doc)
    return doc


def _front_matter(text: str) -> tuple[str, str | None]:
    """The text with its front matter blanked (line numbers stay), and the matter's title.
    Only a YAML mapping counts: a document that merely opens with a `---` rule loses nothing."""
    match = _FRONT_MATTER.match(text)
    if match is None or len(match.group(0)) > FRONT_MATTER_CHARS:
        return text, None
    try:
        # Strings only (BaseLoader): a date such as 2024-02-30 is no reason to fail an import.
        matter = yaml.load(match.group(1) or "{}", Loader=yaml.BaseLoader)  # noqa: S506
    except yaml.YAMLError:
        return text, None
    if not isinstance(matter, dict):
        return text, None
    title = matter.get("title")
    blank = "\n" * match.group(0).count("\n")
    return blank + text[match.end() :], repair(one_line(title)) if isinstance(title, str) else None


def _line(token: Token) -> int:
    return (token.map or [0])[0] + 1


def _drop_implied(doc: Document) -> None:
    """Drops the sections with no items whose heading the next section's path repeats: a
    report shows that heading above the next section anyway."""
    keep = [
        index
        for index, section in enumerate(doc.sections)
        if any(i.section == index for i in doc.items)
        or index + 1 == len(doc.sections)
        or doc.sections[index + 1].headings[: len(section.headings)] != section.headings
        or len(doc.sections[index + 1].headings) == len(section.headings)
    ]
    renumber = {old: new for new, old in enumerate(keep)}
    doc.sections = [doc.sections[i] for i in keep]
    doc.items = [replace(item, section=renumber[item.section]) for item in doc.items]


def _heading_text(inline: Token) -> str:
    # Nested headings are joined with SEPARATOR: one inside a heading would split it in two.
    return repair(one_line(inline.content)).replace(SEPARATOR.strip(), ">")


def _checkbox(tokens: list[Token], i: int) -> tuple[bool, str] | None:
    """(checked, title) when tokens[i] opens the first paragraph of a list item `[ ] ...`."""
    if tokens[i].type != "paragraph_open" or i == 0 or tokens[i - 1].type != "list_item_open":
        return None
    match = _CHECKBOX.match(tokens[i + 1].content)
    if match is None:
        return None
    return match.group(1) != " ", repair(one_line(match.group(2)))


def _title(
    headings: list[tuple[int, int, str]], title_at: int | None, doc: Document, opened_at: list[int]
) -> tuple[str, ...]:
    """The title heading, and the heading right below it when that names the system rather
    than a part of the checklist; that one's own section (with no items) is then removed."""
    if title_at is None:
        return ()
    title = headings[0][2]
    # "# Production Readiness Checklist" then "## Stock Data Collection System" with no items
    # of its own: the second names the system, and is part of the title.
    if len(headings) > 1:
        at, level, text = headings[1]
        own = opened_at.index(at)
        below = {h for n, s in enumerate(doc.sections) if n != own for h in s.headings[:1]}
        if (
            level == 2
            and at == title_at + 3
            and text not in below
            and text.lower() not in _NOT_SUBTITLES
            and not any(i.section == own for i in doc.items)
        ):
            del doc.sections[own]
            del opened_at[own]
            doc.items = [replace(i, section=i.section - (i.section > own)) for i in doc.items]
            return (title, text)
    return (title,)
