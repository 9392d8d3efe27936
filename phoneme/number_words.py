"""English numbers as words ("1234" → "one thousand two hundred thirty-four", ordinals "21st" →
"twenty-first"). Written here rather than imported from `inflect`, whose import alone takes ~1.7 s
(it type-checks its whole API at import), which was most of a cold render's text stage."""

from __future__ import annotations

UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")
ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_thousand(number: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(number, 100)
    if hundreds:
        words += [UNITS[hundreds], "hundred"]
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words.append(TENS[tens] + (f"-{UNITS[units]}" if units else ""))
    elif rest or not words:
        words.append(UNITS[rest])
    return words


def cardinal(number: int) -> str:
    """Words for a non-negative integer; beyond the quadrillions, digit by digit."""
    if number < 0:
        return "minus " + cardinal(-number)
    if number >= 1000 ** len(SCALES):
        return " ".join(UNITS[int(d)] for d in str(number))
    if number == 0:
        return UNITS[0]
    groups: list[str] = []
    scale = 0
    while number:
        number, group = divmod(number, 1000)
        if group:
            words = _below_thousand(group) + ([SCALES[scale]] if SCALES[scale] else [])
            groups.insert(0, " ".join(words))
        scale += 1
    return " ".join(groups)


def ordinal(words: str) -> str:
    """Turn the last word of a cardinal into its ordinal ("twenty-one" → "twenty-first")."""
    head, _, last = words.rpartition(" ")
    prefix, hyphen, unit = last.rpartition("-")
    if unit in ORDINAL_IRREGULAR:
        unit = ORDINAL_IRREGULAR[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    last = f"{prefix}{hyphen}{unit}"
    return f"{head} {last}" if head else last
