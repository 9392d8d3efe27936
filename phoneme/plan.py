"""The speech plan: the written words (the captions) and, for each, what the voice says for it.

Why a plan: captions show what was written and speech says it, so both must come from one list of
words. Each caption word carries its spoken form; the spoken text handed to espeak-ng records which
caption word each of its characters came from, so espeak-ng's word events can be traced back to the
written word they speak (phoneme.align). Pauses from `<break>` split the spoken text into chunks.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

from phoneme.charset import check_speakable, script_of, strip_invisible
from phoneme.errors import SpeechError
from phoneme.languages import language as language_of
from phoneme.markup import Pause, Spoken, Text, parse_markup
from phoneme.numerals import MINUS_SIGNS, digit_run, rewrite
from phoneme.spoken import is_silent, spell_letters, spoken_form
from phoneme.symbols import CURRENCY_SYMBOLS

CJK_SCRIPTS = {"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HANGUL", "IDEOGRAPHIC"}
_UNIT_WORD = re.compile(r"^(?:[$€£¥]|%|°[CF]?)[.,;:!?]*$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class PlannedWord:
    """One caption word as written, and what is said for it."""

    text: str
    spoken: str
    space_before: bool = True
    pause_after_s: float = 0.0  # a <break> after this word
    fixed: bool = False  # spoken form given by markup (<sub>, <say-as>)


@dataclass(frozen=True)
class Chunk:
    """Text espeak-ng says in one go; `owners[i]` is the caption word of character i (-1: a separator)."""

    spoken: str
    owners: tuple[int, ...]
    pause_after_s: float


@dataclass(frozen=True)
class SpeechPlan:
    language: str
    words: tuple[PlannedWord, ...]
    lead_pause_s: float = 0.0

    @property
    def written_text(self) -> str:
        """The captions' text: the written text without control characters, tags or repeated spaces."""
        return "".join((" " if w.space_before and i else "") + w.text for i, w in enumerate(self.words))

    def chunks(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        spoken: list[str] = []
        owners: list[int] = []
        spaced = language_of(self.language).spaced
        for index, word in enumerate(self.words):
            if spoken:
                separator = "" if (not spaced and not word.space_before) else " "
                spoken.append(separator)
                owners.extend([-1] * len(separator))
            spoken.append(word.spoken)
            owners.extend([index] * len(word.spoken))
            if word.pause_after_s > 0 or index == len(self.words) - 1:
                chunks.append(Chunk("".join(spoken), tuple(owners), word.pause_after_s))
                spoken, owners = [], []
        return chunks

    @property
    def spoken_text(self) -> str:
        return " ".join(chunk.spoken for chunk in self.chunks())

    def key(self) -> list:
        """Everything about the plan that changes the audio or the captions (for cache keys)."""
        return [self.lead_pause_s, [[w.text, w.spoken, w.space_before, w.pause_after_s] for w in self.words]]


def _is_cjk(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "N") and script_of(char) in CJK_SCRIPTS


def _wide_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] == "P" and unicodedata.east_asian_width(char) in ("W", "F")


def _split_cjk(word: PlannedWord) -> list[PlannedWord]:
    """A run of Chinese or Japanese text as one caption word per character; Latin runs ("IBAN", "3.5%")
    stay whole and punctuation joins the character before it (captions break between characters)."""
    units: list[str] = []
    latin = False  # whether the current unit is a run of non-CJK characters
    for index, char in enumerate(word.text):
        continues_latin = latin and not _is_cjk(char) and not _wide_punctuation(units[-1][-1])
        signed = char in MINUS_SIGNS and word.text[index + 1 : index + 2] in tuple("0123456789" + CURRENCY_SYMBOLS)
        if char in CURRENCY_SYMBOLS or signed:  # "是¥100", "是-250": the amount's symbol or sign starts its unit
            attach = continues_latin
        else:
            attach = bool(units) and (unicodedata.category(char)[0] in ("P", "Z", "M", "S") or continues_latin)
        if attach:
            units[-1] += char
        else:
            units.append(char)
            latin = not _is_cjk(char)
    return [
        PlannedWord(unit, "", word.space_before if i == 0 else False, word.pause_after_s if i == len(units) - 1 else 0)
        for i, unit in enumerate(units)
    ]


def _merge_units(words: list[PlannedWord]) -> list[PlannedWord]:
    """ "5 €", "€ 5", "20 °C", "5 %": an amount and its unit written apart are one word ("five euros")."""
    merged: list[PlannedWord] = []
    index = 0
    while index < len(words):
        word = words[index]
        plain = not word.fixed and word.space_before and _UNIT_WORD.match(word.text)
        previous = merged[-1] if merged else None
        if plain and previous and not previous.fixed and previous.text[-1:].isdigit() and not previous.pause_after_s:
            merged[-1] = replace(previous, text=f"{previous.text} {word.text}", pause_after_s=word.pause_after_s)
        elif (
            plain
            and word.text[0] in CURRENCY_SYMBOLS
            and index + 1 < len(words)
            and not words[index + 1].fixed
            and words[index + 1].text[:1].isdigit()
            and not word.pause_after_s
        ):
            following = words[index + 1]
            merged.append(replace(following, text=f"{word.text} {following.text}", space_before=word.space_before))
            index += 1
        else:
            merged.append(word)
        index += 1
    return merged


def _merge_digit_runs(words: list[PlannedWord]) -> list[PlannedWord]:
    """ "+44 20 7946 0958", "1234 5678 9012 3456": a number written in groups is one word, read digit by
    digit (phoneme.numerals.digit_run), not four quantities."""
    merged: list[PlannedWord] = []
    index = 0
    while index < len(words):
        run = 0
        if not words[index].fixed:
            texts = []
            for word in words[index:]:
                if word.fixed or (texts and not word.space_before):
                    break
                texts.append(word.text)
                if word.pause_after_s:
                    break
            run = digit_run(texts, 0) if len(texts) > 1 else 0
        if run > 1:
            part = words[index : index + run]
            merged.append(replace(part[0], text=" ".join(w.text for w in part), pause_after_s=part[-1].pause_after_s))
            index += run
        else:
            merged.append(words[index])
            index += 1
    return merged


def _words_of(pieces, language: str) -> tuple[list[PlannedWord], float]:
    """Caption words of the parsed pieces, with whether whitespace preceded each, and the leading pause."""
    words: list[PlannedWord] = []
    lead = 0.0
    at_space = False
    for piece in pieces:
        if isinstance(piece, Pause):
            if words:
                words[-1] = replace(words[-1], pause_after_s=words[-1].pause_after_s + piece.seconds)
            else:
                lead += piece.seconds
        elif isinstance(piece, Spoken):
            at_space = at_space or piece.written[:1].isspace()
            spoken = piece.spoken
            if piece.kind == "characters" and language_of(language).letter_names:
                spoken = spell_letters(spoken)
            written = _SPACES.sub(" ", piece.written).strip()
            words.append(PlannedWord(written, spoken, at_space and bool(words), fixed=True))
            at_space = piece.written[-1:].isspace()
        elif isinstance(piece, Text):
            position = 0
            for match in re.finditer(r"\S+", piece.text):
                at_space = at_space or match.start() > position
                words.append(PlannedWord(match.group(0), "", at_space and bool(words)))
                at_space, position = False, match.end()
            at_space = at_space or position < len(piece.text)
    return words, lead


def _speak(words: list[PlannedWord], language: str) -> tuple[list[PlannedWord], float]:
    """Give each word its spoken form; a word with nothing to say (punctuation) joins its neighbour.
    Also returns the pause of breaks after leading punctuation (it becomes part of the lead pause)."""
    spoken: list[PlannedWord] = []
    leading_text: str | None = None  # silent words before the first spoken one
    leading_space, leading_pause = False, 0.0
    for index, word in enumerate(words):
        before = words[index - 1].text if index else ""
        after = words[index + 1].text if index + 1 < len(words) else ""
        said = spoken_form(word.spoken if word.fixed else rewrite(word.text, language, before, after), language)
        joiner = " " if word.space_before else ""
        if is_silent(said):
            if spoken:
                last = spoken[-1]
                spoken[-1] = replace(
                    last,
                    text=f"{last.text}{joiner}{word.text}",
                    spoken=last.spoken + said.strip(),
                    pause_after_s=last.pause_after_s + word.pause_after_s,
                )
            else:
                leading_text = word.text if leading_text is None else f"{leading_text}{joiner}{word.text}"
                leading_pause += word.pause_after_s
                leading_space = leading_space or word.space_before
            continue
        if leading_text is not None and not spoken:
            word = replace(word, text=f"{leading_text}{joiner}{word.text}", space_before=leading_space)
        spoken.append(replace(word, spoken=said))
    return spoken, leading_pause


def plan_text(text: str, language: str, max_chars: int, min_chars: int = 1) -> SpeechPlan:
    """Validate the text and plan what is said for each written word; raises SpeechError (one line)."""
    if text is None or len(text.strip()) < min_chars:
        raise SpeechError("the text is empty; give the sentence(s) to speak")
    if len(text) > max_chars:
        raise SpeechError(
            f"the text has {len(text)} characters, over the limit of {max_chars}; split it into several "
            "renders (a batch script) or raise text.max_chars in your config"
        )
    cleaned = unicodedata.normalize("NFC", strip_invisible(text))
    pieces = parse_markup(cleaned)
    for piece in pieces:
        if isinstance(piece, Text):
            check_speakable(piece.text, language)
        elif isinstance(piece, Spoken):
            check_speakable(piece.written, language)
            check_speakable(piece.spoken, language)
    words, lead = _words_of(pieces, language)
    words = _merge_digit_runs(_merge_units(words))
    if not language_of(language).spaced:
        words = [unit for word in words for unit in (_split_cjk(word) if not word.fixed else [word])]
    words, leading = _speak(words, language)
    if not words:
        raise SpeechError("the text has nothing speakable (only symbols or punctuation); give words to speak")
    return SpeechPlan(language, tuple(words), lead + leading)
