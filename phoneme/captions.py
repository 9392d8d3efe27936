"""Captions (SRT and WebVTT) from the timed written words: the text as the author wrote it (numbers,
currency, full-width punctuation), timed by the speech that says it.

Each word knows whether a space precedes it in the written text, so a cue reproduces the writing
("我的IBAN账户 online banking"); a cue also ends where a <break> pause follows a word.

Layout, as subtitle guidelines ask: a cue is at most two lines of `max_chars` characters (the
language's `captions.line_chars` where it has one, config/languages/<code>.yaml: 16 for Chinese and
Japanese, whose characters are twice as wide), ends at a sentence end, and is cut preferably after a
comma-like mark (，、；： or , ; :), otherwise between words, never inside one. A language without
spaces breaks where its `captions.word_breaks` say: Chinese at jieba's dictionary word ends ("客服中心"
stays whole, never "客服中 / 心。"), Japanese between any two characters. A cue shows for at least
`min_seconds` where the next cue leaves room, so a short answer is still readable.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from phoneme.artifacts import TimedWord
from phoneme.languages import language as language_of

SENTENCE_END = ".?!。？！"
SOFT_BREAK = ",;:，、；：）)」』】"
MAX_LINES = 2


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str  # the words as written, on one line
    lines: tuple[str, ...] = field(default=())  # how the cue is shown: at most two lines

    @property
    def shown(self) -> str:
        return "\n".join(self.lines) if self.lines else self.text


def join_words(words: list[TimedWord]) -> str:
    """The words as written: a space only where the written text had one."""
    return "".join((" " if w.space_before and i else "") + w.text for i, w in enumerate(words))


@functools.lru_cache(maxsize=1)
def _segmenter():
    """jieba's dictionary segmenter (bundled with the package, no download), loaded once per process."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def word_boundaries(text: str) -> set[int]:
    """Character offsets in `text` where a Chinese word ends (jieba, dictionary only: deterministic)."""
    offsets, position = set(), 0
    for token in _segmenter().cut(text, HMM=False):
        position += len(token)
        offsets.add(position)
    return offsets


def _has_cjk(text: str) -> bool:
    return any("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def break_allowed(words: list[TimedWord], language: str) -> list[bool]:
    """`allowed[i]`: may a cue or a line end after `words[i]`? Between written words always; inside
    CJK text only where the language's `word_breaks` end a word (timed words there are single characters)."""
    allowed = [True] * len(words)
    breaks = language_of(language).captions.word_breaks
    if breaks == "spaces" or not any(_has_cjk(w.text) for w in words):
        return allowed
    text, ends = "", []
    for index, word in enumerate(words):
        text += (" " if word.space_before and index else "") + word.text
        ends.append(len(text))
    boundaries = word_boundaries(text) if breaks == "jieba" else set(ends)
    for index, end in enumerate(ends[:-1]):
        spaced = words[index + 1].space_before
        allowed[index] = spaced or end in boundaries or words[index].text[-1:] in SOFT_BREAK + SENTENCE_END
    return allowed


def _phrases(words: list[TimedWord]) -> list[tuple[int, int]]:
    """Index ranges that no cue may span: sentences, and the stretches between <break> pauses."""
    spans, start = [], 0
    for index, word in enumerate(words):
        if word.text[-1:] in SENTENCE_END or word.break_after:
            spans.append((start, index + 1))
            start = index + 1
    if start < len(words):
        spans.append((start, len(words)))
    return spans


def _best_cut(words, allowed, lo, hi, fits, line_chars) -> int:
    """Where to end the cue that starts at `lo` (exclusive end index): the last allowed break that
    fits, or an earlier one after a comma-like mark when that leaves at least half a line."""
    candidates = [k for k in range(lo + 1, hi) if allowed[k - 1] and fits(lo, k)]
    if not candidates:  # one word longer than a cue: let it run over rather than cut inside it
        later = [k for k in range(lo + 1, hi) if allowed[k - 1]]
        return later[0] if later else hi
    soft = [k for k in candidates if words[k - 1].text[-1:] in SOFT_BREAK]
    if soft and len(join_words(words[lo : soft[-1]])) >= line_chars // 2:
        return soft[-1]
    return candidates[-1]


def _lines(words: list[TimedWord], allowed: list[bool], line_chars: int) -> tuple[str, ...]:
    """One line when it fits; else two, split at the allowed break that balances them best
    (a comma-like mark wins a near tie)."""
    text = join_words(words)
    if len(text) <= line_chars or len(words) < 2:
        return (text,)
    best, best_score = None, None
    for k in range(1, len(words)):
        if not allowed[k - 1]:
            continue
        first, second = join_words(words[:k]), join_words(words[k:])
        over = max(0, len(first) - line_chars) + max(0, len(second) - line_chars)
        score = (over, abs(len(first) - len(second)) - (3 if words[k - 1].text[-1:] in SOFT_BREAK else 0))
        if best_score is None or score < best_score:
            best, best_score = (first, second), score
    return best or (text,)


def build_cues(
    words: list[TimedWord],
    language: str,
    max_chars: int = 42,
    max_seconds: float = 7.0,
    min_seconds: float = 1.0,
) -> list[Cue]:
    """Group words into cues of at most two lines of `max_chars` (or the language's `line_chars`: 16 for
    Chinese and Japanese) and `max_seconds`;
    a cue ends at a sentence end and before a <break> pause, and breaks only between words."""
    if not words:
        return []
    line_chars = language_of(language).captions.line_chars or max_chars
    allowed = break_allowed(words, language)

    def fits(lo: int, hi: int) -> bool:
        text = join_words(words[lo:hi])
        if words[hi - 1].end - words[lo].start > max_seconds:
            return False
        return len(text) <= line_chars or (
            len(text) <= MAX_LINES * line_chars
            and all(len(line) <= line_chars for line in _lines(words[lo:hi], allowed[lo:hi], line_chars))
        )

    ranges: list[tuple[int, int]] = []
    for lo, hi in _phrases(words):
        while lo < hi:
            end = hi if fits(lo, hi) else _best_cut(words, allowed, lo, hi, fits, line_chars)
            ranges.append((lo, end))
            lo = end
    cues = []
    for index, (lo, hi) in enumerate(ranges):
        part = words[lo:hi]
        start, end = part[0].start, max(part[-1].end, part[0].start + 0.3)
        if end - start < min_seconds:  # readable: stay up longer where the next cue leaves room
            following = words[ranges[index + 1][0]].start if index + 1 < len(ranges) else None
            end = start + min_seconds if following is None else max(end, min(start + min_seconds, following))
        cues.append(Cue(start, end, join_words(part), _lines(part, allowed[lo:hi], line_chars)))
    return cues


def _stamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(cues: list[Cue]) -> str:
    blocks = [f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.shown}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def to_vtt(cues: list[Cue]) -> str:
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.shown}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def write_captions(words: list[TimedWord], language: str, srt_path: Path, vtt_path: Path | None = None) -> list[Cue]:
    cues = build_cues(words, language)
    Path(srt_path).write_text(to_srt(cues), encoding="utf-8")
    if vtt_path is not None:
        Path(vtt_path).write_text(to_vtt(cues), encoding="utf-8")
    return cues
