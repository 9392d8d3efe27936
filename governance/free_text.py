"""Free text that reaches the audit log (names, comments, reasons): one line, no control characters.

Why: `dhf audit list` prints one entry per line, and a reviewer name holding a newline printed a
second, forged entry under it. Bidirectional overrides (U+202E) and other format
characters can make a printed name read differently from what is stored, so they are refused too.
Text is refused, not silently cleaned: what the log says someone typed is what they typed.
"""

from __future__ import annotations

import unicodedata

from config.errors import DhfError

REFUSED_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")  # control, format (bidi overrides, zero-width), line/paragraph separators


class FreeTextError(DhfError):
    """A name or comment that cannot go into the audit log as written."""

    http_status = 422
    code = "invalid_text"


def check_free_text(value: str, what: str, max_length: int = 500, required: bool = False) -> str:
    """`value` stripped of surrounding spaces; FreeTextError naming the first character that cannot be logged."""
    text = value.strip()
    if required and not text:
        raise FreeTextError(f"{what} is empty; give one (it is recorded in the audit log)")
    if len(text) > max_length:
        raise FreeTextError(f"{what} is {len(text)} characters long; the audit log keeps at most {max_length}")
    for index, char in enumerate(text):
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            name = " ".join((f"U+{ord(char):04X}", unicodedata.name(char, ""))).strip()
            raise FreeTextError(
                f"{what} contains a control character ({name} at position {index + 1}); write it on one line "
                "without control or formatting characters"
            )
    return text


def named_actor(name: str, actor: str) -> str:
    """How a decider is shown: the typed name with the authenticated actor beside it ("alice (root)"),
    or the actor alone when no other name was given."""
    name = name.strip()
    return f"{name} ({actor})" if name and name != actor else actor


def decider_of(entry_user: str, extra: dict) -> str:
    """`named_actor` of a logged decision: its `reviewer` name beside the entry's user."""
    return named_actor(str(extra.get("reviewer") or ""), entry_user)


def printable(value: object) -> str:
    """How a stored value is shown on one terminal line: refused characters escaped (\\n, \\u202e), so
    an old entry written before this check still cannot forge a line."""
    text = "" if value is None else str(value)
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unicodedata.category(char) in REFUSED_CATEGORIES else char
        for char in text
    )
