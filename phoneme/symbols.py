"""How each language says the symbols it accepts (€, £, ¥, $, %, °, &, +, −, =, @, #, ×).

Why a table rather than espeak-ng's own reading: espeak-ng reads some symbols and silently skips
others, differently per voice (its Mandarin voice skips "€" and "°", German skips "/" and "*"), and
reads "£3.50" as "pound three point five zero". The words are what the speech says (`symbols:` in
config/languages/<code>.yaml); captions keep the symbol as written. A symbol that is not in its
language's table is refused (phoneme.charset).
"""

from __future__ import annotations

from phoneme.languages import LanguageSymbols, language

__all__ = ["CURRENCY_SYMBOLS", "LETTER_NAMES", "LanguageSymbols", "language_symbols", "spoken_symbols"]

CURRENCY_SYMBOLS = "$€£¥"


def language_symbols(code: str) -> LanguageSymbols:
    """The symbol words of a language; a language without a table speaks no symbols (they are refused)."""
    return language(code).symbols


def spoken_symbols(code: str) -> frozenset[str]:
    return language_symbols(code).spoken()


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
