"""Turn espeak-ng events into word and phone timings, optionally refined with g2p-en's ARPAbet, and
trace each spoken word back to the written (caption) word it says.

espeak-ng's event times are exact (they are where the audio was produced) but its phoneme set is
coarse for visemes; g2p-en gives ARPAbet detail but no times. The ARPAbet phones of each word are
therefore placed inside that word's espeak-ng time span, following espeak-ng's own phone boundaries.
"""

from __future__ import annotations

import numpy as np

from phoneme.artifacts import TimedPhone, TimedWord
from phoneme.tts import EVENT_END, EVENT_MSG_TERMINATED, EVENT_PHONEME, EVENT_WORD, PhoneAlphabet, RawEvent

PAUSE = "_"


STRESS_MARKS = str.maketrans("", "", "',%=ˈˌ")  # espeak-ng mnemonics' and IPA's stress marks


def clean_symbol(name: str) -> str:
    """A phone's name (espeak-ng mnemonic or IPA) without stress marks; every pause variant becomes '_'."""
    stripped = name.translate(STRESS_MARKS)
    return PAUSE if not stripped or stripped.startswith("_") else stripped


def word_spans(text: str, events: list[RawEvent]) -> list[tuple[int, int]]:
    """The characters of `text` each espeak-ng word event speaks: from its position to the next word's
    position or the end of its clause, whichever is first. espeak-ng reports 1-based character
    positions (characters, not bytes, for UTF-8 input); a word's `length` is 0 or 1 for some languages,
    and it reads some runs of written words as one (Spanish "e.g. b" is one event), so the next word
    is the better end. Clause ends (END events) bound the last word: text espeak-ng never reached
    (it stopped at a NUL byte) is not counted as spoken by the word before it."""
    positions = [min(max(e.text_position - 1, 0), len(text)) for e in events if e.kind == EVENT_WORD]
    clause_ends = sorted(
        min(e.text_position, len(text))
        for e in events
        if e.kind in (EVENT_END, EVENT_MSG_TERMINATED) and e.text_position
    )
    spans: list[tuple[int, int]] = []
    for index, first in enumerate(positions):
        following = next((p for p in positions[index + 1 :] if p > first), len(text))
        clause_end = next((p for p in clause_ends if p > first), len(text))
        spans.append((first, min(max(min(following, clause_end), first + 1), len(text))))
    return spans


def espeak_timings(
    text: str, events: list[RawEvent], duration: float, alphabet: PhoneAlphabet = "espeak"
) -> tuple[list[TimedWord], list[TimedPhone]]:
    """Words (with their text) and the engine's phones (named in `alphabet`), each with start/end in seconds."""
    phone_events = [e for e in events if e.kind == EVENT_PHONEME]
    phones: list[TimedPhone] = []
    word_events = [e for e in events if e.kind == EVENT_WORD]
    word_starts = [e.time for e in word_events]
    for index, event in enumerate(phone_events):
        stop = phone_events[index + 1].time if index + 1 < len(phone_events) else duration
        word_index = int(np.searchsorted(word_starts, event.time + 1e-6, side="right") - 1)
        symbol = clean_symbol(event.name)
        phones.append(
            TimedPhone(
                symbol=symbol,
                start=event.time,
                end=max(stop, event.time),
                alphabet=alphabet,
                word_index=word_index if symbol != PAUSE else -1,
            )
        )
    words: list[TimedWord] = []
    for index, (event, (first, last)) in enumerate(zip(word_events, word_spans(text, events), strict=True)):
        spoken = [p for p in phones if p.word_index == index]
        start = spoken[0].start if spoken else event.time
        stop = spoken[-1].end if spoken else event.time
        words.append(TimedWord(text=text[first:last].strip() or text[first : first + 1], start=start, end=stop))
    return words, phones


def speech_end(phones: list[TimedPhone], duration: float) -> float:
    """When the last sound (not pause) of a chunk ends; `duration` when there is none."""
    spoken = [p.end for p in phones if p.symbol != PAUSE]
    return min(max(spoken), duration) if spoken else duration


def caption_spans(
    owners: tuple[int, ...], spans: list[tuple[int, int]], words: list[TimedWord], voiced: list[bool]
) -> dict[int, list[tuple[float, float]]]:
    """Caption word index → the time spans of the spoken words that say it. A spoken word covering
    several caption words (one espeak-ng word "你好" for the captions "你" and "好") is shared evenly;
    a spoken word without a sound (no phone) speaks nothing."""
    said: dict[int, list[tuple[float, float]]] = {}
    for (first, last), word, has_sound in zip(spans, words, voiced, strict=True):
        if not has_sound:
            continue
        covered: list[int] = []
        for owner in owners[first:last]:
            if owner >= 0 and owner not in covered:
                covered.append(owner)
        step = (word.end - word.start) / max(len(covered), 1)
        for k, owner in enumerate(covered):
            said.setdefault(owner, []).append((word.start + k * step, word.start + (k + 1) * step))
    return said


def refine_with_arpabet(words: list[TimedWord], phones: list[TimedPhone], arpabet: list[list[str]]) -> list[TimedPhone]:
    """Replace each word's espeak-ng phones with its ARPAbet phones, timed within the same span."""
    refined: list[TimedPhone] = [p for p in phones if p.symbol == PAUSE]
    for index, word_arpabet in enumerate(arpabet):
        own = [p for p in phones if p.word_index == index]
        if not own:
            continue
        if not word_arpabet:
            refined.extend(own)
            continue
        bounds = np.array([p.start for p in own] + [own[-1].end])
        positions = np.linspace(0, len(own), len(word_arpabet) + 1)
        times = np.interp(positions, np.arange(len(bounds)), bounds)
        for j, symbol in enumerate(word_arpabet):
            refined.append(
                TimedPhone(
                    symbol=symbol.rstrip("012"),
                    start=float(times[j]),
                    end=float(times[j + 1]),
                    alphabet="arpabet",
                    word_index=index,
                )
            )
    refined.sort(key=lambda p: (p.start, p.end))
    return refined
