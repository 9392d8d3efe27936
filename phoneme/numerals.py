"""Numbers said as written: signs, ranges, dates, times, ordinals, and digit strings read digit by digit.

Why a pass of its own, before a word's spoken form (phoneme.spoken): espeak-ng reads "-250" as "250"
in French and Spanish, "5-10" as "five ten", "14h30" as "quatorze h trente", "3.5" in Japanese as
"three five", and a phone number as one huge quantity. The value and the sign the caption shows must be
what is said, so these forms are rewritten here into words (English, which g2p-en must read too) or into
the language's words around plain digits that espeak-ng reads right ("moins 250", "5 bis 10",
"14 heures 30", "3てん5"). Captions are not touched: they show the word as written. The words come
from each language's `numerals:` table (config/languages/<code>.yaml); the grammar that is not a table
(English numbers and times, German and written French and Spanish ordinals) is here, by language.

A minus sign that belongs to a number becomes `SIGN` here and the language's minus word at the end of
the spoken form (`finish`), so "$-20", "-$20", "-5 °C" and "-3.5%" keep the sign in front of the whole
amount ("minus twenty dollars"). Where a reading is ambiguous the choice is in docs/decisions.md.
"""

from __future__ import annotations

import re

from phoneme.languages import LanguageNumerals, language
from phoneme.number_words import UNITS, cardinal, ordinal
from phoneme.symbols import LETTER_NAMES

SIGN = "\ue000"  # a minus that belongs to the number after it (private use: refused in input, never written)
MINUS_SIGNS = "-−"  # hyphen-minus and U+2212
DASHES = "-–"  # what joins a range: hyphen-minus and en dash
LONG_DIGITS = 8  # an unseparated digit string this long is an account or phone number, read digit by digit

GERMAN_UNITS = ("", "ein", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
GERMAN_TEENS = ("zehn", "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn",
                "neunzehn")  # fmt: skip
GERMAN_TENS = ("", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig")
GERMAN_ORDINAL_STEMS = {1: "erst", 3: "dritt", 7: "siebt", 8: "acht"}

_TRAIL = re.compile(r"^(.*?)([.,;:!?。，、；：！？]*)$", re.S)
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
_SIGN_BEFORE = re.compile(rf"(?<![^\s(\[{{=~:/])[{MINUS_SIGNS}](?=[$€£¥]?\s?\d)")
_SIGN_AFTER_CURRENCY = re.compile(rf"([$€£¥])\s?[{MINUS_SIGNS}](?=\d)")
_RANGE = re.compile(rf"(?<![\w.,/\-–])({SIGN}?{_NUM})\s?[{DASHES}]\s?({SIGN}?[{MINUS_SIGNS}]?{_NUM})(?![\d]|[-–/.,]\d)")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2})|h(\d{2})?)(?:\s?([ap])\.?m\.?)?$", re.IGNORECASE)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_NUMERIC_DATE = re.compile(r"^(\d{1,4})([/.])(\d{1,2})\2(\d{1,4})$")
_DIGIT_GROUPS = re.compile(r"^\+?\(?\d+\)?(?:[\s\-.]?\(?\d+\)?)*$")
_IBAN_START = re.compile(r"^[A-Z]{2}\d{2}$")
_GROUP = re.compile(r"^\(?\d{1,4}\)?$")
_ORDINAL_FR = re.compile(r"^(\d+)(?:e|è|ème|eme)$")
_ORDINAL_ES = re.compile(r"^(\d+)\.?([ºª°]|er)$")


def numerals(code: str) -> LanguageNumerals | None:
    """The language's number tables (`numerals:` in config/languages/<code>.yaml); None: it has none."""
    return language(code).numerals


def _bare(word: str) -> str:
    return _TRAIL.match(word).group(1) if word else ""


def digit_run(texts: list[str], start: int) -> int:
    """How many written words from `start` are one phone, card or account number written in groups
    ("+44 20 7946 0958", "(020) 7946 0958", "1234 5678 9012 3456", "DE89 3704 0044 0532 0130 00"),
    to be read digit by digit as one word; 0 when they are not one.

    A run ends at a word with trailing punctuation. Plain numbers in a row ("10 20 30") are not a run:
    a run starts with "+", a country's IBAN letters, a group in parentheses or with a leading zero, or
    is at least three groups of four digits (a card)."""
    first = texts[start]
    end = start + 1
    if first != _bare(first):
        return 0
    while end < len(texts) and _GROUP.match(_bare(texts[end])):
        end += 1
        if texts[end - 1] != _bare(texts[end - 1]):
            break
    groups = [_bare(t).strip("()") for t in texts[start + 1 : end]]
    if len(groups) < 1:
        return 0
    if re.fullmatch(r"\+\d{1,3}", first) or (_IBAN_START.match(first) and len(groups) >= 2):
        return end - start
    if not _GROUP.match(first):
        return 0
    groups.insert(0, first.strip("()"))
    marked = any(g.startswith("0") and len(g) > 1 for g in groups) or first.startswith("(")
    card = len(groups) >= 3 and all(len(g) == 4 for g in groups[:-1])
    return end - start if marked or card else 0


def _said_digits(groups: list[str], language: str) -> str:
    """Groups of digits (and letters) one by one, a short pause (comma) between groups."""
    table = numerals(language)
    said = []
    plus = ""
    for group in groups:
        if group == "+":
            plus = f"{table.plus if table else '+'} "
            continue
        chars = [c for c in group if c.isalnum()]
        if language == "en":
            said.append(" ".join(UNITS[int(c)] if c.isdigit() else LETTER_NAMES.get(c.upper(), c) for c in chars))
        else:
            said.append(" ".join(chars))
        said[-1], plus = plus + said[-1], ""
    return ", ".join(s for s in said if s)


def _digit_groups(word: str) -> list[str] | None:
    """The groups of a word read digit by digit, or None (a quantity, a range, a date)."""
    parts = word.split()
    if len(parts) > 1:  # merged by the plan (digit_run)
        if digit_run(parts, 0) != len(parts):
            return None
        groups = []
        for part in parts:
            if part.startswith("+"):
                groups += ["+", part[1:]]
            else:
                groups.append(part.strip("()"))
        return groups
    long_or_zero = len(word) >= LONG_DIGITS or (word.startswith("0") and len(word) > 1)
    if not _DIGIT_GROUPS.match(word) or (word.isdigit() and not long_or_zero):
        return None
    groups = [g for g in re.split(r"[\s\-.()]+", word.lstrip("+")) if g]
    phone = word.startswith("+")
    if not phone and "." in word:
        return None  # "3.5", "1.000.000", "7.12.2026": a decimal, a thousands separator or a date
    leading_zero = any(g.startswith("0") and len(g) > 1 for g in groups)  # "0-10" is a range
    if not phone and len(groups) == 2 and not ("(" in word or leading_zero):
        return None  # "5-10", "1990-2000", "100-1000" (and so "555-1234"): a range; "555-0123" is a phone number
    return (["+"] if phone else []) + groups


def _year_words(year: int) -> str:
    """An English year as said: "nineteen ninety-nine", "two thousand five", "twenty twenty-six"."""
    if 2000 <= year <= 2009 or year < 1100 or year >= 10000:
        return cardinal(year)
    high, low = divmod(year, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} {'oh ' if low < 10 else ''}{cardinal(low)}"


def german_ordinal(number: int, ending: str = "en") -> str | None:
    """German ordinal words for 1-99 ("siebten", "einundzwanzigste"); None beyond (espeak-ng reads those)."""
    if not 1 <= number <= 99:
        return None
    if number in GERMAN_ORDINAL_STEMS:
        return GERMAN_ORDINAL_STEMS[number] + ending
    if number < 10:
        return GERMAN_UNITS[number] + "t" + ending
    if number < 20:
        return GERMAN_TEENS[number - 10] + "t" + ending
    tens, units = divmod(number, 10)
    words = (f"{GERMAN_UNITS[units]}und" if units else "") + GERMAN_TENS[tens]
    return words + "st" + ending


def _day(day: int, language: str, ending: str = "en") -> str:
    if language == "en":
        return ordinal(cardinal(day))
    if language == "de":
        return german_ordinal(day, ending) or str(day)
    table = numerals(language)
    return table.day_names.get(day, table.day.format(d=day))


def _year(year: int, language: str) -> str:
    if language == "en":
        return _year_words(year)
    digits = numerals(language).year_digits
    if digits:  # Chinese years are read digit by digit: 二零二六年
        return "".join(digits[int(d)] for d in str(year))
    return str(year)


def _date(year: int, month: int, day: int, language: str) -> str | None:
    table = numerals(language)
    if table is None or not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return table.date.format(d=_day(day, language), month=table.months[month - 1], y=_year(year, language))


def _numeric_date(word: str, language: str) -> str | None:
    """ISO 2026-12-07 in every language; 12/7/2026 (en), 7.12.2026 (de), 7/12/2026 (fr, es), 2026/12/7 (zh, ja)."""
    iso = _ISO_DATE.match(word)
    if iso:
        return _date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)), language)
    found = _NUMERIC_DATE.match(word)
    table = numerals(language)
    if not found or table is None:
        return None
    first, separator, second, third = found.groups()
    if separator != table.date_separator:
        return None  # a dotted date is German; elsewhere "1.5.3" is not a date
    order = table.date_order
    if order == "MDY" and int(first) > 12:  # 25/12/2026 cannot be month-first
        order = "DMY"
    if order == "YMD":
        if len(first) != 4:
            return None
        return _date(int(first), int(second), int(third), language)
    if len(third) != 4:
        return None
    month, day = (first, second) if order == "MDY" else (second, first)
    return _date(int(third), int(month), int(day), language)


def _english_time(hour: int, minute: int, meridiem: str, told: bool) -> str:
    """ "fourteen thirty", "two oh five", "nine o'clock", "fourteen hundred", "two thirty pee em"; `told`:
    the next word says am or pm."""
    said = cardinal(hour)
    if minute:
        said += f" {'oh ' if minute < 10 else ''}{cardinal(minute)}"
    elif not meridiem and not told:
        said += " hundred" if hour > 12 or hour == 0 else " o'clock"
    return said + (f" {LETTER_NAMES[meridiem.upper()]} em" if meridiem else "")


def _time(word: str, language: str, following: str) -> str | None:
    """14:30, 2:30 pm, 2:30pm (en); 14h30 and 14h (fr)."""
    found = _TIME.match(word)
    table = numerals(language)
    if not found or table is None:
        return None
    hour_text, minute_colon, minute_h, meridiem = found.groups()
    if minute_colon is None and not table.hour_letter_times:
        return None  # "5h" is a time only in French
    hour, minute = int(hour_text), int(minute_colon or minute_h or 0)
    if hour > 24 or minute > 59 or (meridiem and not 1 <= hour <= 12):
        return None
    if language == "en":
        told = _bare(following).lower().replace(".", "") in ("am", "pm")
        return _english_time(hour, minute, (meridiem or "").lower(), told)
    if meridiem:
        return None
    said = table.hour if minute == 0 else table.clock
    if hour == 1:
        said = (table.hour_at_one if minute == 0 else table.clock_at_one) or said
    return said.format(h=hour, m=minute)


def _ordinal(word: str, language: str, before: str, after: str) -> str | None:
    """Ordinals as the language writes them: 2e/2ème/1re (fr), 1.º/1ª (es), "am 3. Tag", "7. Dezember" (de)."""
    if language == "fr":
        if word == "1re":
            return "première"
        found = _ORDINAL_FR.match(word)
        return f"{found.group(1)}ème" if found and found.group(1) != "1" else None
    if language == "es":  # words: the spoken form's NFKC would turn "1º" into "1o" ("uno o")
        found = _ORDINAL_ES.match(word)
        words = numerals(language).ordinals
        if not found or not 1 <= int(found.group(1)) <= len(words):
            return found.group(1) if found else None  # above 10 said as the number ("el 11º piso": "once")
        if found.group(2) == "er" and found.group(1) not in ("1", "3"):
            return None
        said = words[int(found.group(1)) - 1]
        if found.group(2) == "ª":
            return said[:-1] + "a"
        return said[:-1] if found.group(2) == "er" else said
    if language == "de" and re.fullmatch(r"\d{1,2}\.", word) and after:
        table = numerals(language)
        ending = table.ordinal_articles.get(before.lower())
        if ending is None and _bare(after) in table.months:
            ending = "en"
        if ending is not None:
            return german_ordinal(int(word[:-1]), ending)
    return None


def rewrite(word: str, language: str, before: str = "", after: str = "") -> str:
    """The written word in the form its spoken form is made from: dates, times, ordinals, digit strings,
    ranges and signs said as meant; other words unchanged. `before` and `after` are the neighbouring
    written words (a German "3." is an ordinal after "am", a day next to a month name is an ordinal)."""
    if numerals(language) is None:
        return word
    core, trail = _TRAIL.match(word).groups()
    if not core:
        return word
    if language == "de" and word.endswith(".") and (said := _ordinal(word, language, before, after)):
        return said
    for make in (
        lambda: _time(core, language, after),
        lambda: _numeric_date(core, language),
        lambda: _digits(core, language),
        lambda: _ordinal(core, language, before, after),
        lambda: _context_date(core, language, before, after),
    ):
        said = make()
        if said is not None:
            return said + trail
    return _ranges_and_signs(word, language)


def _digits(core: str, language: str) -> str | None:
    groups = _digit_groups(core)
    return _said_digits(groups, language) if groups else None


def _context_date(core: str, language: str, before: str, after: str) -> str | None:
    """English days next to a month name are ordinals ("December 7" → "December seventh"), a year after
    a month or day is said as a year ("twenty twenty-six"); Chinese "2026年" digit by digit."""
    if not core.isdigit():
        return None
    marker = numerals(language).year_marker
    if marker and after.startswith(marker) and len(core) == 4:
        return _year(int(core), language)
    if language != "en":
        return None
    months = {m.lower() for m in numerals("en").months}
    neighbour = {_bare(before).lower(), _bare(after).lower()}
    if 1 <= int(core) <= 31 and len(core) <= 2 and neighbour & months:
        return ordinal(cardinal(int(core)))
    if len(core) == 4 and _bare(before).lower() in months:
        return _year_words(int(core))
    return None


def _ranges_and_signs(word: str, language: str) -> str:
    table = numerals(language)
    text = _SIGN_AFTER_CURRENCY.sub(rf"{SIGN}\1", word)
    text = _SIGN_BEFORE.sub(SIGN, text)

    def one_range(match: re.Match) -> str:
        second = match.group(2)
        if second[:1] in MINUS_SIGNS:
            second = SIGN + second[1:]
        said = table.range.format(a=match.group(1), b=second)
        return f" {said} " if table.joiner else said

    return _RANGE.sub(one_range, text)


def finish(text: str, language: str) -> str:
    """The spoken form with each SIGN as the language's minus word, and decimal points said where
    espeak-ng would drop them."""
    table = numerals(language)
    if table is None:
        return text.replace(SIGN, "-")
    text = text.replace(SIGN, f"{table.joiner}{table.minus}{table.joiner}")
    if table.decimal_point:
        text = re.sub(r"(\d)\.(\d)", rf"\1{table.decimal_point}\2", text)
    return text
