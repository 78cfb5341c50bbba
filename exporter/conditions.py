"""The conditions of an item's `expect:`: `FACT OP VALUE` parsed once, then judged against facts.

Grammar: `FACT OP VALUE`, separated by whitespace. OP is one of OPERATORS; `exists` takes no
value or `true`/`false`. VALUE is a number, a quoted string ('...' or "...", where \\' \\" and
\\\\ stand for ' " and \\; other backslashes stay, so regexes need no doubling), `true`/`false`,
a duration (`500ms 30s 1h30m 7d`, held as seconds), a size (`512KiB 10GB`, held as bytes) or
a version (`15`, `7.2`, `15.4.1`, `v1.2`). `matches` takes a quoted regex (Python's syntax,
searched by RE2 in linear time; at most MAX_REGEX_LENGTH characters).

Judging:
- A missing fact (absent or None) fails every condition except `exists false`.
- Numbers compare as numbers; a boolean is not a number. A fact string holding a plain
  number ("100", "0640") is a number.
- Against a duration, a fact is seconds: a number, or a string such as "30s", "1h30m" or
  PostgreSQL's "5min", "100ms", "0". Against a size, a fact is bytes: a number, or a string
  such as "1MiB", "128MB" or PostgreSQL's "8kB" (kB, MB, GB are powers of 1000, as in values).
- Against a number or version, a fact string with a dotted number in it ("7.0.15",
  "PostgreSQL 15.4": the first run counts) compares as a version, a tuple of integers. A
  plain decimal ("15.19") is a version only when the fact's name says so (`version`,
  `server_version`), otherwise a number, so "1.23" < 1.5 holds. `==` and `!=` compare as
  many components as the condition gives (`version == 15` holds for "15.19"); ordering pads
  with zeros.
- Strings: `==`/`!=` exact; ordering a string that is not a version does not hold.
- Booleans: `==`/`!=`; the strings true/false, on/off, yes/no count (PostgreSQL settings).
- `contains`: substring of a string, member of a list. `matches`: a search (RE2) in str(fact), or
  in each item of a list.
- A fact of the wrong type does not hold and explain() says why; judging never raises.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import re2

from exporter.units import is_duration, is_size, parse_duration, parse_size

if TYPE_CHECKING:
    from exporter.results import Facts

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "contains", "matches", "exists")
_ORDERING = frozenset({"<", "<=", ">", ">="})
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXAMPLES = {
    "==": "status == 200",
    "!=": "status != 503",
    "<": "status < 400",
    "<=": "duration <= 500ms",
    ">": "days_left > 14",
    ">=": "version >= 15.4",
    "contains": "body contains 'ok'",
    "matches": "body matches '^ok'",
}

_FACT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_WORD = re.compile(r"\S+")
_QUOTED = {
    "'": re.compile(r"'((?:\\.|[^'\\])*)'", re.DOTALL),
    '"': re.compile(r'"((?:\\.|[^"\\])*)"', re.DOTALL),
}
_ESCAPE = re.compile(r"\\([\\'\"])")
# [0-9], not \d: Python's \d also matches other scripts' digits, which no config or probe means.
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_VERSION = re.compile(r"v?([0-9]+(?:\.[0-9]+)*)")
_VERSION_ONLY = re.compile(r"v[0-9]+(?:\.[0-9]+)*|[0-9]+(?:\.[0-9]+){2,}")
_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+)+")
_PG_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s|min|h|d)")
_PG_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_TRUTH = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
_SHOWN_MAX = 80


class ConditionError(ValueError):
    """A condition that cannot be parsed; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Version:
    """A version such as 15.4.1, compared as a tuple of integers."""

    parts: tuple[int, ...]
    text: str

    def __str__(self) -> str:
        return self.text


class Seconds(float):
    """A duration value, in seconds: fact strings such as "5min" are read as durations."""


class Bytes(int):
    """A size value, in bytes: fact strings such as "128MB" are read as sizes."""


MAX_REGEX_LENGTH = 1000
"""Characters in a `matches` pattern: longer is a mistake or an attack, not a check."""

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are raised and reported with the config's line


@dataclass(frozen=True)
class Regex:
    """A `matches` pattern, run by RE2: time linear in the text, so no pattern and no body can
    hold the event loop (Python's `re` backtracks: `(a+)+b` on 64 KiB of `a` never ends).
    Python's syntax is checked first, for its clearer errors; RE2 then refuses what it
    cannot run in linear time (backreferences, lookaround)."""

    pattern: str
    _compiled: Any = field(compare=False, repr=False)

    @classmethod
    def compile(cls, pattern: str) -> Regex:
        if len(pattern) > MAX_REGEX_LENGTH:
            raise ValueError(f"longer than {MAX_REGEX_LENGTH} characters")
        re.compile(pattern)
        try:
            return cls(pattern, re2.compile(pattern, _RE2_OPTIONS))
        except re2.error as error:
            problem = error.args[0].decode() if error.args else str(error)
            raise ValueError(
                f"{problem} (matches runs in linear time: backreferences and lookaround"
                " are not supported, and repetition counts stop at 1000)"
            ) from None

    def search(self, text: str) -> bool:
        return self._compiled.search(text) is not None


Value = bool | int | float | str | Version | Regex | None


class _Token(NamedTuple):
    text: str
    quoted: bool


@dataclass(frozen=True)
class Condition:
    """One parsed `FACT OP VALUE`. Build it with `Condition.parse`."""

    text: str
    fact: str
    op: str
    value: Value
    # The number literal read as a version too, kept from its text because 1.10 is not 1.1.
    version: Version | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> Condition:
        if not isinstance(text, str):
            raise ConditionError(f"a condition is text such as 'status == 200', got {text!r}")
        text = text.strip()
        tokens = _tokenise(text)
        if not tokens:
            raise ConditionError("empty condition: write FACT OP VALUE, e.g. 'status == 200'")
        fact, *rest = tokens
        if fact.quoted or not _FACT.fullmatch(fact.text):
            raise ConditionError(_bad_fact(fact, text))
        if not rest:
            raise ConditionError(
                f"no operator in {text!r}: write FACT OP VALUE, "
                f"e.g. '{fact.text} == 200' or '{fact.text} exists'"
            )
        op, *values = rest
        if op.quoted or op.text not in OPERATORS:
            raise ConditionError(
                f"unknown operator {op.text!r} in {text!r}: use one of {' '.join(OPERATORS)}"
            )
        if len(values) > 1:
            raise ConditionError(
                f"unexpected {values[1].text!r} after the value in {text!r}: "
                "quote a value that contains spaces, e.g. body == 'all good'"
            )
        if op.text == "exists":
            return cls(text, fact.text, op.text, _exists_value(values, text))
        if not values:
            raise ConditionError(
                f"missing value after {op.text!r} in {text!r}: e.g. {_EXAMPLES[op.text]!r}"
            )
        value, version = _value(fact.text, op.text, values[0], text)
        return cls(text, fact.text, op.text, value, version)

    def holds(self, facts: Facts) -> bool:
        return self._verdict(facts)[0]

    def explain(self, facts: Facts) -> str:
        """The condition with what was found, for evidence: "status == 200 (got 503)"."""
        return f"{self.text} ({self._verdict(facts)[1]})"

    def _verdict(self, facts: Facts) -> tuple[bool, str]:
        fact = facts.get(self.fact)
        if fact is None:
            return self.op == "exists" and self.value is False, f"fact {self.fact} missing"
        try:
            found = f"got {_show(fact)}"
            if self.op == "exists":
                return self.value is not False, found
            outcome = self._compare(fact)
            if outcome is None:
                return False, f"{found}, {_kind(fact)}, not {self._wanted()}"
            return outcome, found
        except (ValueError, OverflowError) as error:
            # e.g. an integer with more digits than Python will convert: fail, don't crash.
            return False, f"fact {self.fact} could not be read: {error}"

    def _compare(self, fact: object) -> bool | None:
        """Whether the condition holds on a present fact; None when the types do not compare."""
        if isinstance(self.value, Regex):
            items = fact if isinstance(fact, list) else [fact]
            return any(self.value.search(str(item)) for item in items)
        if self.op == "contains":
            return str(self.value) in fact if isinstance(fact, str | list) else None
        operands = self._operands(fact)
        return None if operands is None else bool(_COMPARE[self.op](*operands))

    def _operands(self, fact: object) -> tuple[Any, Any] | None:
        """The fact and the value as two things the operator can compare, if they are."""
        value = self.value
        if isinstance(value, bool):
            truth = _truth(fact)
            return None if truth is None else (truth, value)
        if isinstance(value, str):
            return (fact, value) if isinstance(fact, str) else None
        if isinstance(value, Seconds):
            return _pair(_seconds(fact), value)
        if isinstance(value, Bytes):
            return _pair(_bytes(fact), value)
        if isinstance(value, Version) or (isinstance(fact, str) and self._reads_as_version(fact)):
            return self._versions(fact)
        return _pair(_number(fact), value)

    def _reads_as_version(self, fact: str) -> bool:
        if not _NUMBER.fullmatch(fact.strip()):
            return True
        # "15.19" is PostgreSQL 15 but "1.23" is a ratio: only the fact's name tells them apart.
        return "." in fact and "version" in self.fact.rsplit(".", 1)[-1].lower()

    def _versions(self, fact: object) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        found = _version_in(fact)
        if found is None or self.version is None:
            return None
        wanted = self.version.parts
        if self.op in ("==", "!="):
            return _padded(found, len(wanted))[: len(wanted)], wanted
        width = max(len(found), len(wanted))
        return _padded(found, width), _padded(wanted, width)

    def _wanted(self) -> str:
        if self.op == "contains":
            return "text or a list"
        return _kind(self.value)


def parse_conditions(texts: Sequence[str]) -> tuple[Condition, ...]:
    """Parse every condition of an `expect:`; the error names the position of the bad one."""
    if isinstance(texts, str):
        raise ConditionError(f"expect is a list of conditions, e.g. [{texts!r}], not one string")
    conditions: list[Condition] = []
    for number, text in enumerate(texts, start=1):
        try:
            conditions.append(Condition.parse(text))
        except ConditionError as error:
            raise ConditionError(f"condition {number}: {error}") from None
    return tuple(conditions)


def failing(conditions: Sequence[Condition], facts: Facts) -> list[str]:
    """The explanation of each condition that does not hold on `facts`; [] when all hold."""
    explanations: list[str] = []
    for condition in conditions:
        holds, found = condition._verdict(facts)
        if not holds:
            explanations.append(f"{condition.text} ({found})")
    return explanations


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return tokens
        quote = text[position]
        if quote in _QUOTED:
            match = _QUOTED[quote].match(text, position)
            if match is None:
                raise ConditionError(f"unterminated string in {text!r}: close it with {quote}")
            position = match.end()
            if position < len(text) and not text[position].isspace():
                raise ConditionError(
                    f"unexpected {text[position:]!r} right after a quoted value in {text!r}: "
                    "separate the parts with spaces"
                )
            tokens.append(_Token(_ESCAPE.sub(r"\1", match.group(1)), quoted=True))
        else:
            word = _WORD.match(text, position)
            assert word is not None  # text[position] is not whitespace
            position = word.end()
            tokens.append(_Token(word.group(), quoted=False))


def _bad_fact(fact: _Token, text: str) -> str:
    if fact.quoted:
        return f"a fact name is not quoted in {text!r}: write e.g. 'status == 200'"
    if any(symbol in fact.text for symbol in "=!<>"):
        return f"put spaces around the operator in {text!r}, e.g. 'status == 200'"
    return (
        f"invalid fact name {fact.text!r} in {text!r}: a name starts with a letter or _ "
        "and holds letters, digits and _ . - /, e.g. header.content-type"
    )


def _exists_value(values: list[_Token], text: str) -> bool | None:
    if not values:
        return None
    value = values[0]
    if value.quoted or value.text.lower() not in ("true", "false"):
        raise ConditionError(
            f"'exists' takes no value or true/false, not {value.text!r}, in {text!r}: "
            "e.g. 'header.etag exists' or 'header.etag exists false'"
        )
    return value.text.lower() == "true"


def _value(fact: str, op: str, token: _Token, text: str) -> tuple[Value, Version | None]:
    """The parsed VALUE of a condition and, for numbers and versions, its version reading."""
    if op == "matches":
        if not token.quoted:
            raise ConditionError(
                f"quote the regex after 'matches' in {text!r}, e.g. {fact} matches '^ok'"
            )
        try:
            return Regex.compile(token.text), None
        except (re.error, ValueError, OverflowError, RecursionError) as error:
            # re reports huge repeat counts and deep nesting with these, not re.error.
            raise ConditionError(f"bad regex {token.text!r} in {text!r}: {error}") from None
    if token.quoted:
        if op in _ORDERING:
            unquote = ": write it without quotes" if _literal(token.text) is not None else ""
            raise ConditionError(
                f"{op!r} needs a number, duration, size or version, not the string "
                f"{token.text!r}, in {text!r}{unquote}; compare strings with == or !="
            )
        return token.text, None
    try:
        literal = _literal(token.text)
    except (ValueError, OverflowError):
        raise ConditionError(f"value {token.text!r} in {text!r} is too large") from None
    if literal is None and op in _ORDERING:
        raise ConditionError(
            f"{op!r} needs a number, duration (30s), size (1MiB) or version (15.4), "
            f"not {token.text!r}, in {text!r}"
        )
    if literal is None:
        raise ConditionError(
            f"unquoted word {token.text!r} in {text!r}: quote strings, "
            f"e.g. {fact} {op} {token.text!r}"
        )
    if op == "contains":
        return token.text, None  # the needle is the text as written: `body contains 200`
    if isinstance(literal, bool):
        if op in _ORDERING:
            raise ConditionError(f"booleans have no order in {text!r}: use == or !=")
        return literal, None
    if isinstance(literal, Seconds | Bytes):
        return literal, None
    return literal, _as_version(token.text)


def _literal(word: str) -> Value:
    """An unquoted VALUE, or None when it is no literal (a string someone forgot to quote)."""
    if word.lower() in ("true", "false"):
        return word.lower() == "true"
    if _INTEGER.fullmatch(word):
        return int(word)
    if _NUMBER.fullmatch(word):
        return float(word)
    if _VERSION_ONLY.fullmatch(word):
        return _as_version(word)
    if is_duration(word):
        return Seconds(parse_duration(word).total_seconds())
    if is_size(word):
        return Bytes(parse_size(word))
    return None


def _as_version(word: str) -> Version | None:
    match = _VERSION.fullmatch(word)
    if match is None:
        return None
    return Version(tuple(int(part) for part in match.group(1).split(".")), word)


def _version_in(fact: object) -> tuple[int, ...] | None:
    """The first dotted number in a fact ("PostgreSQL 15.4" -> (15, 4)), or a whole integer."""
    if isinstance(fact, bool) or not isinstance(fact, str | int | float):
        return None
    text = str(fact).strip()
    dotted = _DOTTED.search(text)
    if dotted is not None:
        return tuple(int(part) for part in dotted.group().split("."))
    whole = _as_version(text)
    return None if whole is None else whole.parts


def _padded(parts: tuple[int, ...], width: int) -> tuple[int, ...]:
    return parts + (0,) * (width - len(parts))


def _pair(found: int | float | None, value: Value) -> tuple[Any, Any] | None:
    return None if found is None else (found, value)


def _number(fact: object) -> int | float | None:
    if isinstance(fact, bool):
        return None
    if isinstance(fact, int | float):
        return fact
    if isinstance(fact, str):
        text = fact.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _NUMBER.fullmatch(text):
            return float(text)
    return None


def _seconds(fact: object) -> int | float | None:
    number = _number(fact)
    if number is not None or not isinstance(fact, str):
        return number
    text = fact.strip()
    if is_duration(text):
        return parse_duration(text).total_seconds()
    match = _PG_DURATION.fullmatch(text)
    return None if match is None else float(match.group(1)) * _PG_SECONDS[match.group(2)]


def _bytes(fact: object) -> int | float | None:
    number = _number(fact)
    if number is not None or not isinstance(fact, str):
        return number
    text = fact.strip()
    if text.endswith("kB"):
        text = text[:-2] + "KB"  # PostgreSQL's spelling
    return parse_size(text) if is_size(text) else None


def _truth(fact: object) -> bool | None:
    if isinstance(fact, bool):
        return fact
    if isinstance(fact, str):
        return _TRUTH.get(fact.strip().lower())
    return None


def _kind(thing: object) -> str:
    """What a fact or value is, in the words of an explanation."""
    if isinstance(thing, bool):
        return "a boolean"
    if isinstance(thing, Seconds):
        return "a duration"
    if isinstance(thing, Bytes):
        return "a size"
    if isinstance(thing, Version):
        return "a version"
    if isinstance(thing, int | float):
        return "a number"
    if isinstance(thing, list):
        return "a list"
    if not isinstance(thing, str):
        return f"a {type(thing).__name__}"
    if _number(thing) is not None:
        return "a number"
    if _seconds(thing) is not None:
        return "a duration"
    if _bytes(thing) is not None:
        return "a size"
    if _version_in(thing) is not None:
        return "a version"
    return "text"


def _show(fact: object) -> str:
    if isinstance(fact, bool):
        return "true" if fact else "false"
    shown = repr(fact)
    return shown if len(shown) <= _SHOWN_MAX else shown[: _SHOWN_MAX - 3] + "..."
