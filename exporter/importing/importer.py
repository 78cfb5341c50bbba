"""`import`: a Markdown checklist document becomes config YAML, with comments, deterministically.

Headings become sections (nested ones joined with mdchecklist.SEPARATOR; a heading with no
checkbox under it stays, as a section with no items, so reports keep the document's shape), every
`- [ ]` line an item with a stable id and its title as written; Daily/Weekly/... headings make
their items recurring; recognise.py suggests a probe where the text makes one clear, `manual: {}`
otherwise. Placeholders in suggested specs (`${NAME:-default}`) can be filled at import time.
"""

from __future__ import annotations

import json
import re
import textwrap
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from exporter.config import NAME_PATTERN
from exporter.importing import mdchecklist
from exporter.importing.recognise import Suggestion, Text, suggest
from exporter.importing.update import IMPORTED_MARK
from exporter.redact import SECRET_NAME, has_url_password, replace_url_passwords
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
_CONDITIONAL = re.compile(
    r"\((if|optional|when)\b[^)]{0,500}\)|\bif (applicable|needed|necessary)\b"
)
_OPTIONAL = re.compile(r"\bif (applicable|using|needed|necessary)\b|\boptional\b")
"""Items worth doing only where they apply: imported with `optional: true`."""
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "of", "on", "or"}
    | {"the", "to", "with"}
)
RESERVED_IDS = frozenset({"go-live"})
"""Item ids the exporter gives a meaning of its own (declaring go-live at runtime)."""
ID_WORDS, ID_CHARS = 6, 64
SHOWN_IDS = 6
"""Item ids a summary line names before it says `and N more`."""
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[-?]([^}]*))?\}")
"""`${NAME}`, `${NAME:-default}` or `${NAME:?example}` in a suggested spec: the loader's
substitution syntax. Import writes the last (required: the item is unconfigured, never run,
until NAME is set); `--set` turns it into the second."""
# Markdown that names no words of an item or heading: images, link targets, HTML tags,
# Hugo/Jekyll shortcodes. Slugs are made from what is left.
_NOT_WORDS = re.compile(
    r"!\[[^\]]{0,500}\](?:\([^)]{0,500}\)|\[[^\]]{0,500}\])"  # image badges
    r"|\]\([^)]{0,500}\)|\]\[[^\]]{0,500}\]"  # link targets (the text before them stays)
    r"|<[^>]{0,200}>|\{\{[<%].{0,500}?[%>]\}\}|\{%.{0,500}?%\}"  # inline HTML, shortcodes
)


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
    depends_on: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class ImportedSection:
    name: str
    title: str
    items: tuple[ImportedItem, ...]


@dataclass(frozen=True)
class Placeholder:
    """A `${NAME...}` the suggested probes use: its default, if any, and the items using it."""

    name: str
    default: str | None
    ids: tuple[str, ...]


class FillError(ValueError):
    """A `--set NAME=VALUE` that cannot be written into the config, and why."""


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
    """Lower-case ASCII words joined by '-': accents folded, emoji, marks, images, link targets,
    HTML tags, template shortcodes and a URL's password dropped."""
    text = _NOT_WORDS.sub(" ", replace_url_passwords(text))
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
    text = bold.group(2) if bold else re.sub(r"\([^)]{0,500}\)", " ", _NOT_WORDS.sub(" ", title))
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
                    optional=bool(_OPTIONAL.search(title.lower())),
                )
            )
        sections.append(
            ImportedSection(section_name, mdchecklist.SEPARATOR.join(headings), tuple(items))
        )
    title = mdchecklist.SEPARATOR.join(doc.title) if doc.title else name
    return Imported(name, title, source, _with_dependencies(tuple(sections)))


ROOT_CHECKS = ("postgres-up", "redis-up")
"""Checks whose item the document makes the plain root of others: "PostgreSQL running and
accessible" before every other item probing the same database."""


def _with_dependencies(sections: tuple[ImportedSection, ...]) -> tuple[ImportedSection, ...]:
    """Every item probing the same target as the one item that checks the service is up
    depends on that item, so an outage pages once. Only when the document has exactly one such
    item: two "PostgreSQL running" lines make the root a guess."""
    items = [i for s in sections for i in s.items]
    needs: dict[str, tuple[str, ...]] = {}
    for check in ROOT_CHECKS:
        # The item that checks only that the service is up; failing that, one that checks it
        # among other things ("PostgreSQL 15+ installed": up, and its version).
        roots = [i for i in items if i.suggestion and i.suggestion.check == check]
        if not roots:
            roots = [i for i in items if i.suggestion and check in i.suggestion.check.split("+")]
        if len(roots) != 1 or roots[0].suggestion is None:
            continue
        root = roots[0]
        assert root.suggestion is not None
        for item in items:
            same = (
                item.suggestion is not None
                and item.id != root.id
                and item.suggestion.kind == root.suggestion.kind
                and item.suggestion.spec.get("dsn", item.suggestion.spec.get("url"))
                == root.suggestion.spec.get("dsn", root.suggestion.spec.get("url"))
            )
            if same:
                needs[item.id] = (*needs.get(item.id, ()), root.id)
    if not needs:
        return sections
    return tuple(
        replace(s, items=tuple(replace(i, depends_on=needs.get(i.id, ())) for i in s.items))
        for s in sections
    )


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


def placeholders(imported: Imported) -> list[Placeholder]:
    """The `${NAME...}` placeholders of the suggested specs, by name, with the items using
    each, in the order the document first uses them."""
    found: dict[str, tuple[str | None, list[str]]] = {}
    for item in imported.items:
        if item.suggestion is None:
            continue
        texts: list[str] = []
        _map_strings(item.suggestion.spec, texts.append)
        for text in texts:
            for match in PLACEHOLDER.finditer(text):
                _, ids = found.setdefault(match.group(1), (match.group(2), []))
                if item.id not in ids:
                    ids.append(item.id)
    return [Placeholder(name, default, tuple(ids)) for name, (default, ids) in found.items()]


def _map_strings(value: Any, change: Callable[[str], Any]) -> Any:
    """A spec with `change` applied to each string in it, at any depth."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    return value


def fill(imported: Imported, values: Mapping[str, str]) -> Imported:
    """The import with each `--set NAME=VALUE` written into the specs that use NAME, as the
    placeholder's new default (`${NAME:-VALUE}`): the environment can still override it."""
    used = {p.name for p in placeholders(imported)}
    for name, value in values.items():
        if name not in used:
            known = ", ".join(sorted(used)) or "none: every item is manual"
            raise FillError(f"--set {name}: no suggested probe uses ${{{name}}} (used: {known})")
        if SECRET_NAME.search(name) or has_url_password(value):
            raise FillError(
                f"--set {name}: that looks like a secret, which must not be written into the "
                f"config; leave it out and set {name} in the environment the exporter runs in"
            )
    if not values:
        return imported

    def put(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        # `}` would end the placeholder: such a value is written as it is, `$` escaped.
        return value.replace("$", "$$") if "}" in value else f"${{{name}:-{value}}}"

    def spec(value: Any) -> Any:
        return _map_strings(value, lambda text: PLACEHOLDER.sub(put, text))

    sections = tuple(
        replace(
            section,
            items=tuple(
                replace(item, suggestion=replace(item.suggestion, spec=spec(item.suggestion.spec)))
                if item.suggestion
                else item
                for item in section.items
            ),
        )
        for section in imported.sections
    )
    return replace(imported, sections=sections)


def summary(imported: Imported, target: str, values: Mapping[str, str]) -> list[str]:
    """What import made and what to do next, for stderr: counts, probes by kind, and each
    placeholder with the value it has in the written file and the items that use it."""
    items = imported.items
    kinds: dict[str, int] = {}
    for item in items:
        if item.suggestion is not None:
            kinds[item.suggestion.kind] = kinds.get(item.suggestion.kind, 0) + 1
    probed = sum(kinds.values())
    bare = sum(not s.items for s in imported.sections)
    config = target if target != "<stdout>" else "FILE"
    lines = [
        f"{target}: {len(items)} {_plural(len(items), 'item')} in {len(imported.sections)} "
        f"{_plural(len(imported.sections), 'section')}"
        + (
            f" ({bare} {_plural(bare, 'heading')} with no items, kept for the report)"
            if bare
            else ""
        ),
        f"  probed: {probed}"
        + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if kinds else ""),
        f"  manual: {len(items) - probed}, attested with `readiness-exporter attest --config "
        f"{config} {imported.name} ITEM --by NAME`",
    ]
    used = placeholders(imported)
    if used:
        lines.append(
            "  placeholders (fill with --set NAME=VALUE, or set them where the exporter runs):"
        )
    for placeholder in used:
        shown = ", ".join(placeholder.ids[:SHOWN_IDS])
        if len(placeholder.ids) > SHOWN_IDS:
            shown += f" and {len(placeholder.ids) - SHOWN_IDS} more"
        if placeholder.name in values:
            value = f"={placeholder.default} (set)"
        elif placeholder.default is None:
            value = " (no default: set it, or validate fails)"
        else:
            value = (
                f" (not set: its items are unconfigured, never run, until it is;"
                f" e.g. {placeholder.default})"
            )
        lines.append(f"    {placeholder.name}{value}, used by {shown}")
    lines.append(f"  next: readiness-exporter check --config {config}")
    return lines


def _plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


def default_name(stem: str) -> str:
    name = slug(stem) or "checklist"
    return name if re.match(NAME_PATTERN, name) else "checklist"


# --- YAML as text: comments where they help, the same bytes for the same document ------------
def render_yaml(imported: Imported, path: str | None = None) -> str:
    """The config YAML; its header's commands name `path`, the file it is written to."""
    out = _header(imported, path or f"{imported.name}.yaml")
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
            "        items:" if section.items else "        items: []",
        ]
        for item in section.items:
            out += _item(item, "            ")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _header(imported: Imported, path: str) -> list[str]:
    items = imported.items
    probed = sum(i.suggestion is not None for i in items)
    used = placeholders(imported)
    lines = [
        f"Imported from {imported.source} by `readiness-exporter import`.",
        f"{len(items)} items in {len(imported.sections)} sections: {probed} probed where the text "
        f"makes the check clear, {len(items) - probed} manual.",
        "",
        f"  readiness-exporter validate --config {path}",
        f"  readiness-exporter serve --config {path}",
        f"  readiness-exporter report --config {path} --format markdown",
        f"  readiness-exporter import {imported.source} --update {path}   (after the document"
        " changed: keeps your edits)",
        "",
        f"`{IMPORTED_MARK}` marks the items of the document: an update keeps your edits of those"
        " still in it and lists those no longer in it. Items you add (without the mark) stay as"
        " you wrote them.",
        "",
        "Each suggested probe says above it what it checks and what to fill in. Its target is a",
        "placeholder, ${NAME:?example}: until NAME is set (in the environment, or written in with",
        "`import --set NAME=VALUE`, or the target edited) the item is unconfigured: it never runs",
        "and does not pass, and /status, check and report name the variable. The example is never",
        "probed. Placeholders:",
    ]
    for placeholder in used:
        lines.append(f"  {placeholder.name}  (e.g. {placeholder.default or ''})")
        lines += textwrap.wrap(
            f"used by {', '.join(placeholder.ids)}",
            90,
            initial_indent=" " * 6,
            subsequent_indent=" " * 8,
            break_on_hyphens=False,
        )
    if not used:
        lines.append("  (none: every item is manual)")
    lines += [
        "Items under Daily/Weekly/... headings are recurring (`every:`): they lapse when not",
        "done again in time. Set `severity: critical` on the items go-live depends on.",
    ]
    wrapped = [
        w
        for line in lines
        for w in textwrap.wrap(line, 96, subsequent_indent="  ", break_on_hyphens=False) or [""]
    ]
    return [f"# {line}".rstrip() for line in wrapped] + [""]


def _item(item: ImportedItem, pad: str) -> list[str]:
    out = [
        f"{pad[:-2]}- id: {_scalar(item.id)}  {IMPORTED_MARK}",
        f"{pad}title: {_text(item.title)}",
    ]
    if item.parent:
        out.append(f"{pad}parent: {_scalar(item.parent)}")
    if item.severity:
        out.append(f"{pad}severity: {item.severity}")
    if item.depends_on:
        out.append(f"{pad}depends_on: [{', '.join(_scalar(d) for d in item.depends_on)}]")
    if item.optional:
        out.append(f"{pad}optional: true")
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
    value = without_hidden(value)
    # The loader looks for a password in the text with its `$$` pairs taken out, so `A$://u:p@`
    # must be judged (and cleaned) as `A://u:p@`.
    if has_url_password(value.replace("$", "")):
        value = replace_url_passwords(value.replace("$", ""))
    return _scalar(value.replace("$", "$$"))


def _quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escapes are YAML's), safe inside [...]."""
    return json.dumps(text, ensure_ascii=False)
