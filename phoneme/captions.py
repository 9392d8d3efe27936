"""Captions (SRT and WebVTT) from the timed written words; CJK text is broken by characters, not spaces.

Each word knows whether a space precedes it in the written text, so a cue reproduces the writing
("我的IBAN账户 online banking"); a cue also ends where a <break> pause follows a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phoneme.artifacts import TimedWord

CJK_LANGUAGES = {"zh", "ja", "ko"}


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def join_words(words: list[TimedWord]) -> str:
    """The words as written: a space only where the written text had one."""
    return "".join((" " if w.space_before and i else "") + w.text for i, w in enumerate(words))


def build_cues(words: list[TimedWord], language: str, max_chars: int = 42, max_seconds: float = 5.0) -> list[Cue]:
    """Group words into cues of at most `max_chars` characters (16 for CJK) and `max_seconds`; a cue
    ends at a sentence end and before a <break> pause."""
    limit = 16 if language in CJK_LANGUAGES else max_chars
    cues: list[Cue] = []
    current: list[TimedWord] = []

    def flush() -> None:
        if current:
            cues.append(Cue(current[0].start, max(current[-1].end, current[0].start + 0.3), join_words(current)))
            current.clear()

    for word in words:
        candidate = join_words([*current, word])
        if current and (len(candidate) > limit or word.end - current[0].start > max_seconds):
            flush()
        current.append(word)
        if word.text[-1:] in ".?!。？！" or word.break_after:
            flush()
    flush()
    return cues


def _stamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(cues: list[Cue]) -> str:
    blocks = [f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def to_vtt(cues: list[Cue]) -> str:
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def write_captions(words: list[TimedWord], language: str, srt_path: Path, vtt_path: Path | None = None) -> list[Cue]:
    cues = build_cues(words, language)
    Path(srt_path).write_text(to_srt(cues), encoding="utf-8")
    if vtt_path is not None:
        Path(vtt_path).write_text(to_vtt(cues), encoding="utf-8")
    return cues
