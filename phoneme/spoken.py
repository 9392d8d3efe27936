"""The spoken form of one written word: what espeak-ng is given to say for it.

English: numbers, decimals, percentages, currency (before or after the amount), degrees, ordinals,
hyphenated numbers, common abbreviations and symbols become words, and accents are folded ("Café" →
"Cafe") so that espeak-ng and g2p-en (which knows only a-z) spell the same words. Other languages keep
their words (espeak-ng reads numbers and accents itself); only symbols and amounts with a symbol are
written out from `phoneme.symbols`, because espeak-ng skips some of them.
"""

from __future__ import annotations

import re
import unicodedata

from phoneme.number_words import cardinal, ordinal
from phoneme.numerals import finish
from phoneme.symbols import CURRENCY_SYMBOLS, LETTER_NAMES, LanguageSymbols, language_symbols

ABBREVIATIONS = {
    "e.g.": "for example",
    "i.e.": "that is",
    "etc.": "et cetera",
    "vs.": "versus",
    "mr.": "mister",
    "mrs.": "missus",
    "ms.": "miz",
    "dr.": "doctor",
    "prof.": "professor",
    "st.": "street",
    "no.": "number",
    "approx.": "approximately",
    "p.a.": "per annum",
    "apr": "eh pee ar",
    "faq": "eff eh cue",
}
FOLD_EXTRA = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "ı": "i",
        "ħ": "h",
        "Ħ": "H",
        "ŧ": "t",
        "Ŧ": "T",
        "ŋ": "ng",
        "Ŋ": "Ng",
        "ĸ": "k",
        "ſ": "s",
        "ŀ": "l",
        "Ŀ": "L",
    }
)
SPOKEN_PUNCTUATION = set(".,;:!?'-。，、；：！？")
SILENT_SYMBOLS = set("|¦")
MAX_CARDINAL_DIGITS = 18  # longer digit strings are read digit by digit (an account number, not a quantity)

_AMOUNT = r"\d(?:[\d,]*\d)?(?:\.\d+)?"
_AMOUNT_ANY = r"\d(?:[\d.,]*\d)?"
_CURRENCY_BEFORE = re.compile(rf"([{re.escape(CURRENCY_SYMBOLS)}])\s?({_AMOUNT})")
_CURRENCY_AFTER = re.compile(rf"({_AMOUNT})\s?([{re.escape(CURRENCY_SYMBOLS)}])")
_DEGREES = re.compile(rf"({_AMOUNT})\s?°\s?([CF])(?![A-Za-z])")
_DEGREES_ALONE = re.compile(r"°\s?([CF])(?![A-Za-z])")
_DEGREE = re.compile(rf"({_AMOUNT})\s?°")
_PERCENT = re.compile(rf"({_AMOUNT})\s?%")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER = re.compile(_AMOUNT)
_NUMBER_HYPHEN = re.compile(r"(\d)-(?=[A-Za-z])")
_SPACES = re.compile(r"\s+")


def is_silent_mark(char: str) -> bool:
    """Typographic marks shown but never spoken: modifier symbols (` ^ ´ ¨) and bars (| ¦)."""
    return unicodedata.category(char) == "Sk" or char in SILENT_SYMBOLS


def drop_silent_marks(text: str) -> str:
    return "".join(" " if is_silent_mark(c) else c for c in text)


def ascii_digits(text: str) -> str:
    """Decimal digits of any script as 0-9 ("٣" → "3"); the caption keeps the written digit."""
    return "".join(str(unicodedata.digit(c)) if c.isdecimal() and not c.isascii() else c for c in text)


def fold_latin(text: str) -> str:
    """Latin letters without their accents ("Zürich" → "Zurich", "Straße" → "Strasse")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(FOLD_EXTRA))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(FOLD_EXTRA)


def spell_letters(letters: str) -> str:
    """Letters one by one as English letter names ("IBAN" → "eye bee eh en"); digits stay digits."""
    return " ".join(LETTER_NAMES.get(c.upper(), c) for c in letters.split())


def _number_words(token: str) -> str:
    token = token.replace(",", "")
    whole, _, fraction = token.partition(".")
    if len(whole) > MAX_CARDINAL_DIGITS:
        spoken = " ".join(cardinal(int(d)) for d in whole)
    else:
        spoken = cardinal(int(whole or "0"))
    if fraction:
        spoken += " point " + " ".join(cardinal(int(d)) for d in fraction)
    return spoken


def _money(symbol: str, amount: str) -> str:
    singular, plural = {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds")}.get(
        symbol, ("yuan", "yuan")
    )
    amount = amount.replace(",", "")
    whole, _, cents = amount.partition(".")
    text = f"{_number_words(whole)} {singular if whole.lstrip('0') == '1' else plural}"
    if cents:
        cents = (cents + "0")[:2]
        if int(cents):
            text += f" and {_number_words(cents)} cents"
    return text


def _english_symbols(text: str) -> str:
    for symbol, word in language_symbols("en").words.items():
        text = text.replace(symbol, f" {word} ")
    return text


def spoken_english(word: str) -> str:
    """What espeak-ng and g2p-en say for one written English word (letters a-z, ' and .,;:!?)."""
    text = ascii_digits(unicodedata.normalize("NFKC", drop_silent_marks(word)))
    text = text.replace("’", "'").replace("‘", "'").replace("–", "-").replace("—", ", ").replace("⁄", "/")
    key = text.lower()
    stripped = key.rstrip(",;:!?")
    if stripped in ABBREVIATIONS:
        text = ABBREVIATIONS[stripped] + text[len(stripped) :]
    text = _CURRENCY_BEFORE.sub(lambda m: _money(m.group(1), m.group(2)), text)
    text = _CURRENCY_AFTER.sub(lambda m: _money(m.group(2), m.group(1)), text)
    degrees = {"C": "Celsius", "F": "Fahrenheit"}
    text = _DEGREES.sub(lambda m: f"{_number_words(m.group(1))} degrees {degrees[m.group(2)]}", text)
    text = _DEGREES_ALONE.sub(lambda m: f" degrees {degrees[m.group(1)]}", text)
    text = _DEGREE.sub(lambda m: f"{_number_words(m.group(1))} degrees", text)
    text = _PERCENT.sub(lambda m: f"{_number_words(m.group(1))} percent", text)
    text = _ORDINAL.sub(lambda m: ordinal(_number_words(m.group(1))), text)
    text = _NUMBER_HYPHEN.sub(r"\1 ", text)
    text = _NUMBER.sub(lambda m: f" {_number_words(m.group(0))} ", text)
    text = finish(_english_symbols(text).replace("-", " "), "en")
    text = re.sub(r"[^A-Za-z' .,;:!?]", " ", fold_latin(text))
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return _SPACES.sub(" ", text).strip()


def _template(table: LanguageSymbols, template: str, amount: str) -> str:
    return f" {template.format(n=amount)} " if table.joiner else template.format(n=amount)


def spoken_other(word: str, language: str) -> str:
    """What espeak-ng says for one written word of a language other than English."""
    table = language_symbols(language)
    text = ascii_digits(unicodedata.normalize("NFKC", drop_silent_marks(word)))
    currency = table.currency
    if currency:
        money = f"{table.joiner}{{}}"
        text = re.sub(
            rf"([{re.escape(CURRENCY_SYMBOLS)}])\s?({_AMOUNT_ANY})",
            lambda m: _template(table, "{n}" + money.format(currency[m.group(1)]), m.group(2)),
            text,
        )
        text = re.sub(
            rf"({_AMOUNT_ANY})\s?([{re.escape(CURRENCY_SYMBOLS)}])",
            lambda m: _template(table, "{n}" + money.format(currency[m.group(2)]), m.group(1)),
            text,
        )
    for mark in ("°C", "°F", "°"):
        if mark in table.degrees:
            pattern = rf"({_AMOUNT_ANY})\s?{mark[0]}\s?{mark[1:]}" + ("(?![A-Za-z])" if mark[1:] else "")
            text = re.sub(pattern, lambda m, mark=mark: _template(table, table.degrees[mark], m.group(1)), text)
    text = re.sub(rf"({_AMOUNT_ANY})\s?%", lambda m: _template(table, table.percent, m.group(1)), text)
    for symbol, spoken in table.words.items():
        text = text.replace(symbol, f"{table.joiner}{spoken}{table.joiner}")
    text = "".join(c if not unicodedata.category(c).startswith("P") or c in SPOKEN_PUNCTUATION else " " for c in text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", finish(text, language))
    return _SPACES.sub(" ", text).strip()


def spoken_form(word: str, language: str) -> str:
    return spoken_english(word) if language == "en" else spoken_other(word, language)


def is_silent(spoken: str) -> bool:
    """True when the spoken form has no letter or digit: punctuation that is shown but not said."""
    return not any(unicodedata.category(c)[0] in ("L", "N") for c in spoken)
