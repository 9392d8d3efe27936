"""Text normalization so that what espeak-ng says and what g2p-en spells are the same words.

English: numbers, decimals, percentages, currency, ordinals, hyphenated numbers ("1-year"),
common abbreviations and stray symbols become words ("1-year 3.5%" → "one year three point five
percent"). Other languages keep their text: espeak-ng expands numbers itself and its own phoneme
events drive the visemes, so no second spelling has to agree with it.
"""

from __future__ import annotations

import re
import unicodedata

from phoneme.errors import SpeechError
from phoneme.number_words import cardinal, ordinal

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
    "apr": "A P R",
    "faq": "F A Q",
}
CURRENCIES = {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds"), "¥": ("yuan", "yuan")}
SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "/": " per ", "°": " degrees "}

_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_CURRENCY = re.compile(r"([$€£¥])\s?(\d[\d,]*(?:\.\d+)?)")
_PERCENT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?%")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_NUMBER_HYPHEN = re.compile(r"(\d)-(?=[A-Za-z])")
_SPACES = re.compile(r"\s+")


def _number_words(token: str) -> str:
    token = token.replace(",", "")
    if "." in token:
        whole, frac = token.split(".", 1)
        return f"{cardinal(int(whole or '0'))} point " + " ".join(cardinal(int(d)) for d in frac)
    return cardinal(int(token))


def _currency(match: re.Match[str]) -> str:
    singular, plural = CURRENCIES[match.group(1)]
    amount = match.group(2).replace(",", "")
    if "." in amount:
        whole, cents = amount.split(".", 1)
        cents = (cents + "0")[:2]
        text = f"{_number_words(whole)} {plural if whole != '1' else singular}"
        if int(cents):
            text += f" and {_number_words(cents)} cents"
        return text
    return f"{_number_words(amount)} {singular if amount == '1' else plural}"


def normalize_english(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("’", "'").replace("“", '"').replace("”", '"').replace("–", "-").replace("—", ", ")
    lowered_words = []
    for word in text.split():
        key = word.lower()
        stripped = key.rstrip(",;:!?")
        if stripped in ABBREVIATIONS:
            lowered_words.append(ABBREVIATIONS[stripped] + key[len(stripped) :])
        else:
            lowered_words.append(word)
    text = " ".join(lowered_words)
    text = _CURRENCY.sub(_currency, text)
    text = _PERCENT.sub(lambda m: f"{_number_words(m.group(1))} percent", text)
    text = _ORDINAL.sub(lambda m: ordinal(_number_words(m.group(1))), text)
    text = _NUMBER_HYPHEN.sub(r"\1 ", text)
    text = _NUMBER.sub(lambda m: _number_words(m.group(0)), text)
    for symbol, words in SYMBOLS.items():
        text = text.replace(symbol, words)
    text = text.replace("-", " ")
    text = re.sub(r"[^A-Za-z' .,;:!?]", " ", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return _SPACES.sub(" ", text).strip()


def normalize_text(text: str, language: str, max_chars: int, min_chars: int = 1) -> str:
    """Validate and normalize; raises SpeechError with the limit and the fix."""
    if text is None or len(text.strip()) < min_chars:
        raise SpeechError("the text is empty; give the sentence(s) to speak")
    if len(text) > max_chars:
        raise SpeechError(
            f"the text has {len(text)} characters, over the limit of {max_chars}; split it into several "
            "renders (a batch script) or raise text.max_chars in your config"
        )
    if language == "en":
        spoken = normalize_english(text)
    else:
        spoken = _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    if not re.search(r"\w", spoken):
        raise SpeechError("the text has nothing speakable (only symbols or punctuation); give words to speak")
    return spoken
