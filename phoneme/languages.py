"""Languages: one data file each, config/languages/<code>.yaml, read into typed objects.

Why data files: what distinguishes one language from another for speech and captions is mostly
tables (the scripts its voice speaks, how it says symbols, months and ranges, whether its words are
separated by spaces, how wide a caption line is), so adding a language is one file plus a voice in
config/voices.yaml. Grammar that is not a table stays in code, keyed by language code: English
numbers and the English spoken form (phoneme.spoken, phoneme.number_words: g2p-en reads English
only), German ordinals, French and Spanish written ordinals (phoneme.numerals).

A language without a file (any other voice espeak-ng has, e.g. `it`) has no script limit, speaks no
symbols, has no number rewriting and is captioned like a spaced language: espeak-ng reads it as is.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config import CONFIG_DIR
from config.errors import ConfigError
from config.loader import read_yaml

LANGUAGES_DIR = CONFIG_DIR / "languages"


class _Data(BaseModel):
    """Immutable, and unknown keys are errors: a typo in a language file fails loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LanguageSymbols(_Data):
    """How the language says the symbols it accepts (phoneme.symbols); a symbol not here is refused."""

    words: dict[str, str] = {}  # a symbol on its own (in this order: "−" before a number is its sign)
    currency: dict[str, str] = {}  # currency symbol → its word after an amount ("5 €" → "5 Euro")
    percent: str = "{n} %"  # "{n}" is the amount as written
    degrees: dict[str, str] = {}  # "°C", "°F", "°" → template with "{n}"
    joiner: str = " "  # between an amount and its word

    def spoken(self) -> frozenset[str]:
        """The symbols this language can say."""
        return frozenset(self.words) | frozenset(self.currency)


class LanguageNumerals(_Data):
    """How the language says what espeak-ng would misread (phoneme.numerals); "{a}", "{h}", ... are
    digits as written."""

    minus: str  # said before a negative number
    range: str  # "{a} to {b}"
    clock: str = ""  # "{h}:{m}" ({m} is the minute as a number: "{m:02d}" keeps its zero)
    hour: str = ""  # "{h}:00"
    clock_at_one: str | None = None  # "{h}:{m}" at one o'clock, where the hour word is singular
    hour_at_one: str | None = None  # "{h}:00" at one o'clock
    hour_letter_times: bool = False  # "14h30" and "14h" are times (French)
    months: tuple[str, ...] = Field(min_length=12, max_length=12)
    date: str  # "{d}" (the day as said), "{month}", "{y}"
    date_order: Literal["MDY", "DMY", "YMD"]  # a numeric date with separators
    date_separator: Literal["/", "."] = "/"  # "7/12/2026" or "7.12.2026"
    day: str = "{d}"  # a day of the month, where `day_names` has none
    day_names: dict[int, str] = {}  # days with their own word ("1er", "ついたち")
    year_digits: str = ""  # years read digit by digit with these ten digits ("二零二六")
    year_marker: str = ""  # a four-digit number before this word is a year ("2026年")
    ordinals: tuple[str, ...] = ()  # the first ordinal words ("primero", "segundo", ...)
    ordinal_articles: dict[str, str] = {}  # after these words "3." is an ordinal, with this ending
    plus: str  # the "+" of a phone number
    decimal_point: str = ""  # said between a decimal's digits where espeak-ng drops the point
    joiner: str = " "  # between the minus word and the number


class LanguageCaptions(_Data):
    """How captions of the language are laid out (phoneme.captions)."""

    line_chars: int | None = Field(None, ge=4)  # a caption line's characters; None: the caller's width
    word_breaks: Literal["spaces", "characters", "jieba"] = "spaces"  # where an unspaced text may break


class Language(_Data):
    code: str = Field(pattern=r"^[a-z]{2,3}$")
    name: str | None = None  # in error lines ("the German voice"); None: the code
    scripts: frozenset[str] | None = None  # Unicode scripts its voice speaks; None: no limit
    advice: dict[str, str] = {}  # a refused script → what to do instead
    latin: Literal["any", "ascii"] = "any"  # ascii: a Latin letter must fold to a-z (the English path)
    spaced: bool = True  # False: words are not separated by spaces (Chinese, Japanese)
    letter_names: bool = False  # its voice reads a lone Latin letter with English rules: spell it
    captions: LanguageCaptions = LanguageCaptions()
    symbols: LanguageSymbols = LanguageSymbols()
    numerals: LanguageNumerals | None = None


@functools.cache
def _load(folder: Path) -> dict[str, Language]:
    """Every language file of `folder` (read once per process)."""
    languages = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            language = Language.model_validate({"code": path.stem, **read_yaml(path)})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ConfigError(f"{path}: {where}: {error['msg']}") from None
        languages[language.code] = language
    return languages


def languages(folder: Path | None = None) -> dict[str, Language]:
    """The languages that have a file, by code."""
    return _load(folder or LANGUAGES_DIR)


def language(code: str, folder: Path | None = None) -> Language:
    """The language `code`: its file, or a language without tables (see the module's docstring)."""
    return _language(code, folder or LANGUAGES_DIR)


@functools.cache
def _language(code: str, folder: Path) -> Language:
    """Cached: the text plan asks for every word, several times."""
    return _load(folder).get(code) or Language.model_construct(code=code)
