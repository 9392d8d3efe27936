"""How each language says the symbols it accepts (€, £, ¥, $, %, °, &, +, −, =, @, #, ×).

Why a table rather than espeak-ng's own reading: espeak-ng reads some symbols and silently skips
others, differently per voice (its Mandarin voice skips "€" and "°", German skips "/" and "*"), and
reads "£3.50" as "pound three point five zero". The words here are what the speech says; captions keep
the symbol as written. A symbol that is not in its language's table is refused (phoneme.charset).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LanguageSymbols:
    words: dict[str, str]  # a symbol on its own
    currency: dict[str, str]  # currency symbol → its word after an amount ("5 €" → "5 Euro")
    percent: str  # "{n}" is the amount as written
    degrees: dict[str, str] = field(default_factory=dict)  # "°C", "°F", "°" → template with "{n}"
    joiner: str = " "  # between an amount and its word


CURRENCY_SYMBOLS = "$€£¥"

LANGUAGES: dict[str, LanguageSymbols] = {
    "en": LanguageSymbols(
        words={
            "&": "and",
            "+": "plus",
            "−": "minus",  # U+2212; before a number it is its sign (phoneme.numerals)
            "=": "equals",
            "@": "at",
            "/": "per",
            "°": "degrees",
            "%": "percent",
            "#": "number",
            "×": "times",
            "±": "plus or minus",
            "<": "less than",
            ">": "greater than",
            "€": "euros",
            "£": "pounds",
            "¥": "yuan",
            "$": "dollars",
        },
        currency={"$": "dollars", "€": "euros", "£": "pounds", "¥": "yuan"},
        percent="{n} percent",
        degrees={"°C": "{n} degrees Celsius", "°F": "{n} degrees Fahrenheit", "°": "{n} degrees"},
    ),
    "de": LanguageSymbols(
        words={
            "&": "und",
            "+": "plus",
            "−": "minus",  # U+2212; before a number it is its sign (phoneme.numerals)
            "=": "gleich",
            "@": "at",
            "°": "Grad",
            "%": "Prozent",
            "#": "Nummer",
            "×": "mal",
            "€": "Euro",
            "£": "Pfund",
            "¥": "Yuan",
            "$": "Dollar",
        },
        currency={"$": "Dollar", "€": "Euro", "£": "Pfund", "¥": "Yuan"},
        percent="{n} Prozent",
        degrees={"°C": "{n} Grad Celsius", "°F": "{n} Grad Fahrenheit", "°": "{n} Grad"},
    ),
    "fr": LanguageSymbols(
        words={
            "&": "et",
            "+": "plus",
            "−": "moins",  # U+2212; before a number it is its sign (phoneme.numerals)
            "=": "égale",
            "@": "arobase",
            "°": "degrés",
            "%": "pour cent",
            "#": "numéro",
            "×": "fois",
            "€": "euros",
            "£": "livres",
            "¥": "yuans",
            "$": "dollars",
        },
        currency={"$": "dollars", "€": "euros", "£": "livres", "¥": "yuans"},
        percent="{n} pour cent",
        degrees={"°C": "{n} degrés Celsius", "°F": "{n} degrés Fahrenheit", "°": "{n} degrés"},
    ),
    "es": LanguageSymbols(
        words={
            "&": "y",
            "+": "más",
            "−": "menos",  # U+2212; before a number it is its sign (phoneme.numerals)
            "=": "igual a",
            "@": "arroba",
            "°": "grados",
            "%": "por ciento",
            "#": "número",
            "×": "por",
            "€": "euros",
            "£": "libras",
            "¥": "yuanes",
            "$": "dólares",
        },
        currency={"$": "dólares", "€": "euros", "£": "libras", "¥": "yuanes"},
        percent="{n} por ciento",
        degrees={"°C": "{n} grados Celsius", "°F": "{n} grados Fahrenheit", "°": "{n} grados"},
    ),
    "zh": LanguageSymbols(
        words={
            "&": "和",
            "+": "加",
            "−": "减",  # U+2212; before a number it is its sign (phoneme.numerals)
            "=": "等于",
            "@": "艾特",
            "°": "度",
            "%": "百分比",
            "#": "号",
            "×": "乘",
            "€": "欧元",
            "£": "英镑",
            "¥": "元",
            "$": "美元",
        },
        currency={"$": "美元", "€": "欧元", "£": "英镑", "¥": "元"},
        percent="百分之{n}",
        degrees={"°C": "{n}摄氏度", "°F": "{n}华氏度", "°": "{n}度"},
        joiner="",
    ),
    "ja": LanguageSymbols(
        words={
            "&": "アンド",
            "+": "プラス",
            "−": "マイナス",  # U+2212; before a number it is its sign (phoneme.numerals)
            "=": "イコール",
            "@": "アット",
            "°": "ど",
            "%": "パーセント",
            "#": "ばん",
            "×": "かける",
            "€": "ユーロ",
            "£": "ポンド",
            "¥": "えん",
            "$": "ドル",
        },
        currency={"$": "ドル", "€": "ユーロ", "£": "ポンド", "¥": "えん"},
        percent="{n}パーセント",
        degrees={"°C": "せっし{n}ど", "°F": "かし{n}ど", "°": "{n}ど"},
        joiner="",
    ),
}
NO_SYMBOLS = LanguageSymbols(words={}, currency={}, percent="{n} %")


def language_symbols(language: str) -> LanguageSymbols:
    """The symbol words of a language; a language without a table speaks no symbols (they are refused)."""
    return LANGUAGES.get(language, NO_SYMBOLS)


@functools.cache
def spoken_symbols(language: str) -> frozenset[str]:
    table = language_symbols(language)
    return frozenset(table.words) | frozenset(table.currency)


# How English says a letter spelt out (initialisms, "2:30 pm"): spoken.py and numerals.py share it. Words both
# espeak-ng and g2p-en say as the letter (a lone "A" is read as the article).
LETTER_NAMES = {
    "A": "eh",
    "B": "bee",
    "C": "see",
    "D": "dee",
    "E": "ee",
    "F": "eff",
    "G": "gee",
    "H": "aitch",
    "I": "eye",
    "J": "jay",
    "K": "kay",
    "L": "el",
    "M": "em",
    "N": "en",
    "O": "oh",
    "P": "pee",
    "Q": "cue",
    "R": "ar",
    "S": "ess",
    "T": "tee",
    "U": "you",
    "V": "vee",
    "W": "double-you",
    "X": "ex",
    "Y": "why",
    "Z": "zee",
}
