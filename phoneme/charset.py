"""Which characters a voice can speak, and the cleaning that speech and captions share.

Why one place: speech and captions are both derived from the text this module cleans, so a character
is either gone from both (control and format characters, including bidi controls) or present in both.
Characters a voice cannot speak (another script, a symbol with no words, unassigned code points) are
refused naming them, never dropped silently. Which scripts a language's voice speaks is `scripts:` in
config/languages/<code>.yaml (espeak-ng's Mandarin voice reads Latin words with its English rules, the
Japanese one reads kana but says "Chinese letter" for kanji, so kanji are refused for `ja`); a language
without a list has no limit.
"""

from __future__ import annotations

import unicodedata

from phoneme.errors import SpeechError
from phoneme.languages import Language, language, languages
from phoneme.spoken import fold_latin, is_silent_mark
from phoneme.symbols import spoken_symbols

WHITESPACE_CONTROLS = {"\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"}
SCRIPT_NAMES = {"CJK": "Chinese characters", "KATAKANA-HIRAGANA": "kana", "HANGUL": "Korean"}
MAX_NAMED = 4


def strip_invisible(text: str) -> str:
    """Remove control and format characters (NUL, C1, bidi controls, zero-width marks); line breaks and
    tabs become spaces. espeak-ng stops at a NUL and bidi controls must never reach captions."""
    kept = []
    for char in text:
        if char in WHITESPACE_CONTROLS:
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cf"):
            kept.append(char)
    return "".join(kept)


def script_of(char: str) -> str:
    """The script of a letter or number as the first word of its Unicode name ("LATIN", "CJK", ...)."""
    name = unicodedata.name(char, "")
    if not name:
        return "UNNAMED"
    return name.split(" ", 1)[0]


def _latin_ok(char: str, spoken: Language) -> bool:
    if spoken.latin == "ascii":  # the English path folds accents away: the letter must fold to ASCII
        return fold_latin(char).isascii()
    point = ord(char)
    return point < 0x250 or 0x1E00 <= point <= 0x1EFF  # Latin-1, Extended-A/B and Vietnamese; no IPA


def _problem(char: str, spoken: Language, symbols: frozenset[str]) -> str | None:
    """Why `char` cannot be spoken in the language (a short label), or None when it can."""
    category = unicodedata.category(char)
    if category in ("Cs", "Co", "Cn"):
        return {"Cs": "invalid", "Co": "private use", "Cn": "unassigned"}[category]
    if category[0] in ("Z", "M", "P") or category == "Nd" or is_silent_mark(char):
        return None  # spaces, combining marks, punctuation and marks (silent or in the symbol table), digits
    if category[0] == "S":
        return None if char in symbols else "symbol"
    for folded in unicodedata.normalize("NFKC", char):
        if unicodedata.category(folded)[0] in ("Z", "M", "P") or unicodedata.category(folded) == "Nd":
            continue
        if unicodedata.category(folded)[0] == "S":
            if folded not in symbols:
                return "symbol"
            continue
        script = script_of(folded)
        allowed = spoken.scripts
        if allowed is not None and script not in allowed:
            return SCRIPT_NAMES.get(script, script.title())
        if script == "LATIN" and not _latin_ok(folded, spoken):
            return "Latin letter without a spoken form"
    return None


def check_speakable(text: str, code: str) -> None:
    """Refuse text with characters the language's voice cannot speak, naming them (grouped in runs)."""
    runs: list[tuple[str, str]] = []
    previous_end = -2
    spoken, symbols = language(code), spoken_symbols(code)
    for index, char in enumerate(text):
        problem = _problem(char, spoken, symbols)
        if problem is None:
            continue
        if runs and previous_end == index - 1 and runs[-1][1] == problem:
            runs[-1] = (runs[-1][0] + char, problem)
        else:
            runs.append((char, problem))
        previous_end = index
    if not runs:
        return
    named = ", ".join(f'"{_visible(chars)}" ({problem})' for chars, problem in runs[:MAX_NAMED])
    if len(runs) > MAX_NAMED:
        named += f" and {len(runs) - MAX_NAMED} more"
    voice = spoken.name or f"'{code}'"
    raise SpeechError(f"the text has characters the {voice} voice cannot speak: {named}; {_advice(runs, code)}")


def _visible(chars: str) -> str:
    """Characters for an error line: unprintable ones as U+XXXX."""
    return "".join(
        c if c.isprintable() and unicodedata.category(c) not in ("Cs", "Co", "Cn") else f"U+{ord(c):04X}" for c in chars
    )


def _advice(runs: list[tuple[str, str]], code: str) -> str:
    problems = {problem for _, problem in runs}
    scripts = {script_of(c) for chars, _ in runs for c in unicodedata.normalize("NFKC", chars)} - {"LATIN"}
    for script, advice in language(code).advice.items():
        if script in scripts:
            return advice
    others = [
        other.code for other in languages().values() if other.code != code and other.scripts and scripts & other.scripts
    ]
    if others:
        return f"render it with language {' or '.join(sorted(others))} or remove them"
    if problems == {"symbol"}:
        return "write them as words or remove them"
    return "remove them or write them as words"
