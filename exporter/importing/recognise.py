"""Suggests a probe for a checklist item: the check of exporter/importing/checks.py its words name.

The item's text loses its Markdown, link targets and URLs, is split into words and each word
stemmed; a check matches when one of its names appears and none of its `unless` words do.
Work people do (tests, documents, reviews, sign-offs) and anything unclear stay manual: a probe
that checks the wrong thing is worse than an honest attestation. Of the checks that match, the
most specific name wins; checks that probe the same target merge their conditions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from exporter.importing.checks import CHECKS, PEOPLES_WORK, PLACEHOLDERS, Check

__all__ = ["PLACEHOLDERS", "Suggestion", "Text", "Vocabulary", "stem", "suggest", "words"]


@dataclass(frozen=True)
class Suggestion:
    kind: str
    spec: dict[str, Any]
    expect: tuple[str, ...] = ()
    note: str = ""
    """The YAML comment: the check, the words that named it, what it verifies, what to fill."""
    env: tuple[str, ...] = field(default=())
    """The PLACEHOLDERS the spec uses."""
    interval: str | None = None
    check: str = ""
    """The id of the check in importing/checks.py (several joined by '+' when they merged)."""
    words: tuple[str, ...] = ()
    """The item's words that named the check."""


@dataclass(frozen=True)
class Text:
    """An item's words: `plain` without Markdown, link targets or URLs, `low` lower-cased,
    `code` its `spans`, `words` its words and `stems` those words stemmed."""

    plain: str
    low: str
    code: tuple[str, ...]
    cadence: str | None
    words: tuple[str, ...] = ()
    stems: tuple[str, ...] = ()

    @classmethod
    def of(cls, title: str, cadence: str | None = None) -> Text:
        code = tuple(re.findall(r"`([^`]+)`", title))
        plain = _plain(title)
        low = plain.lower()
        found = tuple(words(low))
        return cls(plain, low, code, cadence, found, tuple(stem(w) for w in found))

    def has(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, self.low)


_IMAGE = re.compile(r"!\[[^\]]{0,500}\](\([^)]{0,500}\)|\[[^\]]{0,500}\])")
_LINK = re.compile(r"\[([^\]]{0,500})\](\([^)]{0,500}\)|\[[^\]]{0,500}\])")
_URL = re.compile(r"<?\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s>)\]]*>?|\bwww\.[^\s)\]]+")
_TAG = re.compile(r"<[^>]{0,200}>|\{\{[<%].{0,500}?[>%]\}\}")


def _plain(title: str) -> str:
    """The words a reader sees: images, link targets, URLs, HTML and template tags dropped."""
    text = _IMAGE.sub(" ", title)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _TAG.sub(" ", text)
    return re.sub(r"\s+", " ", re.sub(r"(\*\*|__|`|\*)", "", text)).strip()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


# Names whose last letter is not a plural, and which would collide with another word without it.
_KEEP = frozenset({"https", "hsts", "dns", "cors", "aws", "redis", "ssl", "tls", "os", "alias"})
_SUFFIXES = (
    ("atically", "at"),
    ("ational", "ate"),
    ("ically", "ic"),
    ("ation", "ate"),
    ("ition", "it"),
    ("atic", "at"),
    ("ment", ""),
    ("ion", ""),
    ("ing", ""),
    ("ied", "y"),
    ("ed", ""),
    ("ly", ""),
)


@cache
def stem(word: str) -> str:
    """A light suffix stripper: the forms a checklist uses of one word share a stem
    (rotate, rotated, rotation; backup, backups; scrape, scraping)."""
    if len(word) <= 3 or word in _KEEP or not word.isalpha():
        return word
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]
    return word


Phrase = tuple[tuple[str, ...], ...]
"""A name as stems: groups of adjacent stems, every group somewhere in the item."""


@dataclass(frozen=True)
class Name:
    text: str
    phrase: Phrase
    by: frozenset[str]
    """The documents whose wording motivated this name (empty: the check's own vocabulary)."""

    @classmethod
    def parse(cls, written: str) -> Name:
        tags = frozenset(t[1:] for t in written.split() if t.startswith("@"))
        text = " ".join(t for t in written.split() if not t.startswith("@"))
        return cls(text, _phrase(text), tags)

    @property
    def size(self) -> int:
        return sum(len(group) for group in self.phrase)


def _phrase(text: str) -> Phrase:
    return tuple(tuple(stem(w) for w in words(group)) for group in text.split(" + "))


def _found(phrase: Phrase, stems: tuple[str, ...]) -> bool:
    return all(_at(group, stems) is not None for group in phrase)


def _stems(phrase: Phrase) -> frozenset[str]:
    return frozenset(s for group in phrase for s in group)


def _at(group: tuple[str, ...], stems: tuple[str, ...]) -> int | None:
    n = len(group)
    return next((i for i in range(len(stems) - n + 1) if stems[i : i + n] == group), None)


@dataclass(frozen=True)
class _Entry:
    check: Check
    names: tuple[Name, ...]
    unless: tuple[Phrase, ...]
    allowed: frozenset[str]


@dataclass(frozen=True)
class Vocabulary:
    """CHECKS with their names and words parsed once."""

    entries: tuple[_Entry, ...]

    @classmethod
    def of(cls, checks: Iterable[Check]) -> Vocabulary:
        return cls(
            tuple(
                _Entry(
                    check,
                    tuple(Name.parse(n) for n in check.names),
                    tuple(_phrase(u) for u in check.unless),
                    frozenset(stem(w) for a in check.allow for w in words(a)),
                )
                for check in checks
            )
        )

    def without(self, document: str) -> Vocabulary:
        """The vocabulary with every name that `document`'s wording motivated left out."""
        return Vocabulary(
            tuple(
                replace(e, names=tuple(n for n in e.names if document not in n.by))
                for e in self.entries
            )
        )

    @property
    def documents(self) -> frozenset[str]:
        return frozenset(d for e in self.entries for n in e.names for d in n.by)


VOCABULARY = Vocabulary.of(CHECKS)
_PEOPLE = tuple(_phrase(p) for p in PEOPLES_WORK)


@dataclass(frozen=True)
class _Match:
    entry: _Entry
    name: Name
    params: dict[str, str]
    score: int
    own: frozenset[str]
    """The stems of the name that matched and of the check's `allow` words."""


def suggest(text: Text, vocabulary: Vocabulary = VOCABULARY) -> Suggestion | None:
    """The probe of the check the text names, or None for a manual item."""
    matches = [m for e in vocabulary.entries if (m := _match(e, text)) is not None]
    # People's work makes the item manual, unless a matching check's own name says it.
    excused = {s for m in matches for s in m.own}
    if any(_found(p, text.stems) and not excused.issuperset(_stems(p)) for p in _PEOPLE):
        return None
    if not matches:
        return None
    best = max(matches, key=lambda m: m.score)  # the first of equals: the table's order
    kind, spec = best.entry.check.kind, _render(best.entry.check.spec, best.params)
    same = [
        m
        for m in matches
        if m.entry.check.kind == kind and _render(m.entry.check.spec, m.params) == spec
    ]
    expect = tuple(dict.fromkeys(c for m in same for c in _conditions(m)))
    used = sorted({n for n in PLACEHOLDERS if f"${{{n}}}" in repr(spec)})
    check = "+".join(m.entry.check.id for m in same)
    triggered = tuple(dict.fromkeys(_said(m.name, text) for m in same))
    verifies = "; ".join(m.entry.check.verifies for m in same)
    quoted = ", ".join(f'"{w}"' for w in triggered)
    note = f"check {check}, from the words {quoted}: {verifies}"
    if used:
        note += f". Set {', '.join(used)}"
    return Suggestion(
        kind,
        _with_defaults(spec),
        expect,
        note,
        tuple(used),
        best.entry.check.interval,
        check,
        triggered,
    )


def _match(entry: _Entry, text: Text) -> _Match | None:
    stems = text.stems
    names = [n for n in entry.names if _found(n.phrase, stems)]
    if not names or any(_found(u, stems) for u in entry.unless):
        return None
    name = max(names, key=lambda n: n.size)
    params = dict(entry.check.params)
    score = name.size
    if entry.check.extract is not None:
        found = _EXTRACTORS[entry.check.extract](text)
        if found is None:
            return None
        params.update(found)
        score += 1 if found else 0
    return _Match(entry, name, params, score, _stems(name.phrase) | entry.allowed)


def _said(name: Name, text: Text) -> str:
    """The item's own words that matched the name, e.g. 'backups … nightly'."""
    spans = []
    for group in name.phrase:
        at = _at(group, text.stems)
        assert at is not None  # the name matched
        spans.append(" ".join(text.words[at : at + len(group)]))
    return " … ".join(spans)


def _render(value: Any, params: Mapping[str, str]) -> Any:
    """The template with its `<param>` slots filled; a key, list item or condition holding a
    slot the item's words gave no value for is left out (a TLS item without a version has no
    `min_version`)."""
    if isinstance(value, dict):
        out = {k: _render(v, params) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _UNSET}
    if isinstance(value, list):
        return [v for v in (_render(x, params) for x in value) if v is not _UNSET]
    if isinstance(value, str):
        slots = re.findall(r"<(\w+)>", value)
        if any(params.get(s) is None for s in slots):
            return _UNSET
        return re.sub(r"<(\w+)>", lambda m: params[m.group(1)], value)
    return value


_UNSET: Any = object()


def _conditions(match: _Match) -> list[str]:
    rendered = (_render(e, match.params) for e in match.entry.check.expect)
    return [c for c in rendered if c is not _UNSET]


def _with_defaults(value: Any) -> Any:
    """`${NAME}` as `${NAME:?example}`: a required placeholder. Until NAME is set the item is
    unconfigured (never run); the example only lets the rest of the item be validated."""
    if isinstance(value, dict):
        return {k: _with_defaults(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_defaults(v) for v in value]
    if isinstance(value, str):
        return re.sub(
            r"\$\{(\w+)\}", lambda m: f"${{{m.group(1)}:?{PLACEHOLDERS[m.group(1)][0]}}}", value
        )
    return value


# --- parameters read from the item's words ----------------------------------------------------
# Each returns the `<param>` values it found ({} when it needs none), or None when the check
# needs a value the text does not give (then the check does not match).
Extractor = Callable[[Text], dict[str, str] | None]

_FS_ROOTS = re.compile(r"^/(etc|var|opt|usr|home|srv|tmp|root|proc|sys|dev|mnt|run|lib|bin)\b")
_SIZE = r"(\d+(?:\.\d+)?)\s*(gb|gib|tb|tib|mb|mib)\b"
_UNITS = {"gb": "GB", "gib": "GiB", "tb": "TB", "tib": "TiB", "mb": "MB", "mib": "MiB"}


def _url_paths(text: Text) -> list[str]:
    found = [*text.code, *re.findall(r"(?<![\w.:/])(/[a-z0-9_.\-/]+)", text.plain)]
    return [p for p in found if re.fullmatch(r"/[A-Za-z0-9_.\-/]*", p) and not _FS_ROOTS.match(p)]


def _path(text: Text) -> dict[str, str] | None:
    paths = _url_paths(text)
    status = text.has(r"\breturns? (\d{3})\b")
    return {
        **({"path": paths[0]} if paths else {}),
        **({"status": status.group(1)} if status else {}),
    }


def _named_path(text: Text) -> dict[str, str] | None:
    found = _path(text)
    return found if found and "path" in found else None


def _version_of(name: str) -> Extractor:
    def extract(text: Text) -> dict[str, str] | None:
        found = text.has(rf"\b{name}\s*v?(\d+(?:\.\d+)?)\s*(\+|or (newer|later|above|higher))")
        return {"version": found.group(1)} if found else None

    return extract


def _tls_version(text: Text) -> dict[str, str] | None:
    found = text.has(r"\btls\s*v?1\.([23])\b")
    return {"min_version": f"TLS1.{found.group(1)}"} if found else {}


def _size(match: re.Match[str]) -> str:
    return f"{match.group(1)}{_UNITS[match.group(2)]}"


def _host_size(text: Text) -> dict[str, str] | None:
    memory = text.has(_SIZE + r"\+?\s*(of\s+)?(ram|memory)\b")
    cores = text.has(r"(\d+)\+?\s*(cpu\s+|vcpu\s+)?(cores|cpus|vcpus)\b")
    if not (memory or cores):
        return None
    return {
        **({"memory": _size(memory)} if memory else {}),
        **({"cores": cores.group(1)} if cores else {}),
    }


def _directory(text: Text) -> str | None:
    for word, var in (("backup", "BACKUP_DIR"), ("data", "DATA_DIR"), ("log", "LOG_DIR")):
        if text.has(rf"\b{word}s?\b"):
            return f"${{{var}}}"
    return None


def _percent_free(text: Text) -> float | None:
    """'below 80%' of a usage: the free share it leaves."""
    found = text.has(r"(below|under|less than|<)\s*(\d{1,2})\s*%")
    return 1 - int(found.group(2)) / 100 if found else None


def _disk(text: Text) -> dict[str, str] | None:
    path = _directory(text) or "/"
    size = text.has(_SIZE)
    if size and text.has(r"\b(free|available)\b") and not text.has(r"\bstorage\b"):
        return {"path": path, "free": _size(size)}
    if size:
        return {"path": path, "total": _size(size)}
    free = _percent_free(text)
    return {"path": path, "free_ratio": f"{free:g}" if free is not None else "0.1"}


def _headroom(text: Text) -> dict[str, str] | None:
    free = _percent_free(text)
    return {"ratio": f"{free:g}"} if free is not None else None


def _load(text: Text) -> dict[str, str] | None:
    found = text.has(r"(below|under|less than|<)\s*(\d+(?:\.\d+)?)(?![\d.]|\s*%)")
    return {"load": found.group(2)} if found else None


def _mode(text: Text) -> dict[str, str] | None:
    mode = text.has(
        r"\(\s*0?([0-7]{3})\s*\)|\b(?:permissions?|mode|chmod)\s+(?:of\s+)?0?([0-7]{3})\b"
    )
    if mode is None:
        return None
    octal = mode.group(1) or mode.group(2)
    where = _directory(text)
    if where == "${LOG_DIR}":
        where += "/*.log"
    absolute = [p for p in text.code if _FS_ROOTS.match(p) and " " not in p]
    path = absolute[0] if absolute else where
    return {"mode": f"0{octal}", "path": path} if path else None


def _backup_age(text: Text) -> dict[str, str] | None:
    weekly = text.cadence == "7d" or (text.has(r"\bweekly\b") and not text.has(r"\bdaily\b"))
    return {"age": "8d"} if weekly else {}


def _recurring(text: Text) -> dict[str, str] | None:
    """Only under a Daily/Weekly/... heading: there a job's item says it runs every time."""
    return {} if text.cadence is not None else None


_EXTENSIONS = r"pg_\w+|postgis|timescaledb|pgcrypto|citext|hstore|pgvector|vector|pgaudit"


def _postgres_extension(text: Text) -> dict[str, str] | None:
    if not text.has(r"\bpostgres(ql)?\b|\bpg_"):
        return None
    found = re.search(rf"\b({_EXTENSIONS})\b", text.low)
    return {"extension": found.group(1)} if found else None


_EXTRACTORS: dict[str, Extractor] = {
    "path": _path,
    "named_path": _named_path,
    "postgres_version": _version_of(r"postgres(?:ql)?"),
    "redis_version": _version_of("redis"),
    "tls_version": _tls_version,
    "host_size": _host_size,
    "disk": _disk,
    "headroom": _headroom,
    "load": _load,
    "mode": _mode,
    "backup_age": _backup_age,
    "recurring": _recurring,
    "postgres_extension": _postgres_extension,
}
