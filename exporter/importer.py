"""`import`: a Markdown checklist document becomes config YAML, with comments, deterministically.

Headings become sections (nested ones joined with mdchecklist.SEPARATOR), every `- [ ]` line an
item with a stable id and its title as written; Daily/Weekly/... headings make their items
recurring; recognise.py suggests a probe where the text makes one clear, `manual: {}` otherwise.
"""

from __future__ import annotations

import json
import re
import textwrap
import unicodedata
from dataclasses import dataclass
from typing import Any

import yaml

from exporter import mdchecklist
from exporter.config import NAME_PATTERN
from exporter.recognise import PLACEHOLDERS, Suggestion, Text, suggest
from exporter.text import without_hidden

# cadence word in a heading -> (every, grace): a little slack, so a late run is not a page
CADENCES = {
    "hourly": ("1h", "15m"),
    "daily": ("1d", "2h"),
    "weekly": ("7d", "1d"),
    "biweekly": ("14d", "1d"),
    "fortnightly": ("14d", "1d"),
    "monthly": ("30d", "3d"),
    "quarterly": ("90d", "7d"),
    "yearly": ("365d", "14d"),
    "annual": ("365d", "14d"),
    "annually": ("365d", "14d"),
}
_CADENCE = re.compile(r"\b(" + "|".join(CADENCES) + r")\b", re.IGNORECASE)
_CONDITIONAL = re.compile(r"\((if|optional|when)\b[^)]*\)|\bif (applicable|needed|necessary)\b")
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "of", "on", "or"}
    | {"the", "to", "with"}
)
RESERVED_IDS = frozenset({"go-live"})
"""Item ids the exporter gives a meaning of its own (declaring go-live at runtime)."""
ID_WORDS, ID_CHARS = 6, 64
_PASSWORD_IN_URL = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+):[^@\s/]+@")


@dataclass(frozen=True)
class ImportedItem:
    id: str
    title: str
    checked: bool
    line: int
    parent: str | None
    every: tuple[str, str] | None
    severity: str | None
    suggestion: Suggestion | None


@dataclass(frozen=True)
class ImportedSection:
    name: str
    title: str
    items: tuple[ImportedItem, ...]


@dataclass(frozen=True)
class Imported:
    name: str
    title: str
    source: str
    sections: tuple[ImportedSection, ...]

    @property
    def items(self) -> tuple[ImportedItem, ...]:
        return tuple(i for s in self.sections for i in s.items)


def slug(text: str, max_chars: int = 100) -> str:
    """Lower-case ASCII words joined by '-': accents folded, emoji and marks dropped."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split()
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > max_chars:
            break
        out = candidate
    return out or (words[0][:max_chars] if words else "")


def item_slug(title: str) -> str:
    """An item's id from its title: the bold name of `**Name**: text` forms, otherwise the
    first words without parentheses and filler words."""
    bold = re.match(r"\s*(\*\*|__)(.+?)\1", title)
    text = bold.group(2) if bold else re.sub(r"\([^)]*\)", " ", title)
    words = slug(text, 1000).split("-")
    if len(words) > ID_WORDS:
        words = [w for w in words if w not in _STOPWORDS] or words
    return slug(" ".join(words[:ID_WORDS]), ID_CHARS)


def import_checklist(text: str, name: str, source: str) -> Imported:
    doc = mdchecklist.parse(text)
    sections: list[ImportedSection] = []
    used_ids: set[str] = set(RESERVED_IDS)
    used_sections: set[str] = set()
    ids: list[str] = []
    for index, section in enumerate(doc.sections):
        headings = section.headings or ("General",)
        leaf = slug(headings[-1], 40)
        section_name = _unique(slug(" ".join(headings)) or "section", used_sections)
        cadence = next(
            (CADENCES[m.group(1).lower()] for h in reversed(headings) if (m := _CADENCE.search(h))),
            None,
        )
        items = []
        for item in (i for i in doc.items if i.section == index):
            base = item_slug(item.title) or f"item-{item.line}"
            ident = _unique(base, used_ids, leaf)
            ids.append(ident)
            title = without_hidden(item.title) or f"(untitled item on line {item.line})"
            items.append(
                ImportedItem(
                    id=ident,
                    title=title,
                    checked=item.checked,
                    line=item.line,
                    parent=ids[item.parent] if item.parent is not None else None,
                    every=cadence,
                    severity="info" if _CONDITIONAL.search(title.lower()) else None,
                    suggestion=suggest(Text.of(title, cadence[0] if cadence else None)),
                )
            )
        sections.append(
            ImportedSection(section_name, mdchecklist.SEPARATOR.join(headings), tuple(items))
        )
    title = mdchecklist.SEPARATOR.join(doc.title) if doc.title else name
    return Imported(name, title, source, tuple(sections))


def _unique(base: str, used: set[str], qualifier: str = "") -> str:
    candidates = [base]
    if qualifier and qualifier not in base:
        candidates.append(slug(f"{base} {qualifier}", 100))
    for candidate in candidates:
        if candidate and candidate not in used:
            used.add(candidate)
            return candidate
    n = 2
    while f"{candidates[-1]}-{n}" in used:
        n += 1
    used.add(f"{candidates[-1]}-{n}")
    return f"{candidates[-1]}-{n}"


def default_name(stem: str) -> str:
    name = slug(stem) or "checklist"
    return name if re.match(NAME_PATTERN, name) else "checklist"


# --- YAML as text: comments where they help, the same bytes for the same document ------------
def render_yaml(imported: Imported) -> str:
    out = _header(imported)
    out += [
        "exporter:",
        f"  state: {_scalar(f'sqlite:///./{imported.name}-state.db')}",
        "",
        "checklists:",
        f"  - name: {_scalar(imported.name)}",
        f"    title: {_text(imported.title)}",
        "    sections:",
    ]
    for section in imported.sections:
        out += [
            f"      - name: {_scalar(section.name)}",
            f"        title: {_text(section.title)}",
            "        items:",
        ]
        for item in section.items:
            out += _item(item, "            ")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _header(imported: Imported) -> list[str]:
    items = imported.items
    probed = sum(i.suggestion is not None for i in items)
    used = sorted({v for i in items if i.suggestion for v in i.suggestion.env})
    lines = [
        f"Imported from {imported.source} by `readiness-exporter import`.",
        f"{len(items)} items in {len(imported.sections)} sections: {probed} probed where the text "
        f"makes the check clear, {len(items) - probed} manual.",
        "",
        f"  readiness-exporter validate --config {imported.name}.yaml",
        f"  readiness-exporter serve --config {imported.name}.yaml",
        f"  readiness-exporter report --config {imported.name}.yaml --format markdown",
        "",
        "Each suggested probe says above it what it checks and what to fill in. Its targets come",
        "from the environment with a default, so this file validates and runs as it is:",
    ]
    for name in used:
        default, meaning = PLACEHOLDERS[name]
        lines += [f"  {name}={default}", f"      {meaning}"]
    if not used:
        lines.append("  (none: every item is manual)")
    lines += [
        "Items under Daily/Weekly/... headings are recurring (`every:`): they lapse when not",
        "done again in time. Set `severity: critical` on the items go-live depends on.",
    ]
    wrapped = [w for line in lines for w in textwrap.wrap(line, 96, subsequent_indent="  ") or [""]]
    return [f"# {line}".rstrip() for line in wrapped] + [""]


def _item(item: ImportedItem, pad: str) -> list[str]:
    out = [f"{pad[:-2]}- id: {_scalar(item.id)}", f"{pad}title: {_text(item.title)}"]
    if item.parent:
        out.append(f"{pad}parent: {_scalar(item.parent)}")
    if item.severity:
        out.append(f"{pad}severity: {item.severity}")
    if item.every:
        out += [f"{pad}every: {item.every[0]}", f"{pad}grace: {item.every[1]}"]
    found = item.suggestion
    if found is None:
        out.append(f"{pad}manual: {{}}")
        return out
    if found.interval:
        out.append(f"{pad}interval: {found.interval}")
    out += [f"{pad}# {line}" for line in textwrap.wrap(found.note, 96 - len(pad))]
    out += _mapping(found.kind, found.spec, pad)
    if found.expect:
        out.append(f"{pad}expect: [{', '.join(_quoted(c) for c in found.expect)}]")
    return out


def _mapping(key: str, value: dict[str, Any], pad: str) -> list[str]:
    if not value:
        return [f"{pad}{key}: {{}}"]
    out = [f"{pad}{key}:"]
    for k, v in value.items():
        if isinstance(v, list):
            out.append(f"{pad}  {k}: [{', '.join(_quoted(str(x)) for x in v)}]")
        else:
            out.append(f"{pad}  {k}: {_scalar(v)}")
    return out


def _scalar(value: Any) -> str:
    """One YAML scalar, plain where YAML allows it, quoted where it must be."""
    dumped = yaml.safe_dump(value, allow_unicode=True, width=1_000_000, default_flow_style=True)
    return dumped.removesuffix("\n").removesuffix("\n...")


def _text(value: str) -> str:
    """Document text as a YAML scalar that reads back as written: `$` doubled, so the loader's
    ${VAR} substitution leaves it alone, a password in a URL left out, and no characters the
    config refuses in a title (zero-width, bidi controls)."""
    value = _PASSWORD_IN_URL.sub(r"\1@", without_hidden(value))
    return _scalar(value.replace("$", "$$"))


def _quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escapes are YAML's), safe inside [...]."""
    return json.dumps(text, ensure_ascii=False)
