"""Text people read and trust (names, titles, who attested): nothing invisible or reordering."""

from __future__ import annotations

import unicodedata

# Control (Cc) and format (Cf) characters (bidi overrides U+202A-U+202E and isolates
# U+2066-U+2069, zero-width U+200B-U+200D, U+2060, U+FEFF, ...) and line/paragraph separators:
# they hide text or show it in another order than it is stored, so `by: "alice\u202egnp.exe"`
# would read as someone else's name.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def hidden_character(value: str, allowed: str = "") -> tuple[int, str] | None:
    """The position and code point (`U+202E`) of the first hidden character, or None."""
    if value.isprintable():  # the common case, at C speed
        return None
    for position, char in enumerate(value):
        if char not in allowed and unicodedata.category(char) in _HIDDEN:
            return position, f"U+{ord(char):04X}"
    return None


def visible(value: str, allowed: str = "") -> str:
    """`value`, or ValueError naming the invisible or control character it holds."""
    found = hidden_character(value, allowed)
    if found is not None:
        position, code = found
        raise ValueError(
            f"must not contain invisible or control characters ({code} at character"
            f" {position + 1}): remove it"
        )
    return value


def visible_lines(value: str) -> str:
    """`visible`, allowing the newlines and tabs of text written on several lines."""
    return visible(value, "\n\t")


def without_hidden(value: str) -> str:
    """`value` with its hidden characters dropped (a document's soft hyphens and zero-width
    spaces), keeping newlines and tabs: what an imported title may hold."""
    if value.isprintable():
        return value
    return "".join(c for c in value if c in "\n\t" or unicodedata.category(c) not in _HIDDEN)
