"""Turn espeak-ng events into word and phone timings, optionally refined with g2p-en's ARPAbet.

espeak-ng's event times are exact (they are where the audio was produced) but its phoneme set is
coarse for visemes; g2p-en gives ARPAbet detail but no times. The ARPAbet phones of each word are
therefore placed inside that word's espeak-ng time span, following espeak-ng's own phone boundaries.
"""

from __future__ import annotations

import numpy as np

from phoneme.artifacts import TimedPhone, TimedWord
from phoneme.tts import EVENT_END, EVENT_MSG_TERMINATED, EVENT_PHONEME, EVENT_WORD, RawEvent

PAUSE = "_"


def clean_symbol(name: str) -> str:
    """espeak-ng mnemonic without stress marks; every pause variant becomes '_'."""
    stripped = name.replace("'", "").replace(",", "").replace("%", "").replace("=", "")
    return PAUSE if not stripped or stripped.startswith("_") else stripped


def espeak_timings(text: str, events: list[RawEvent], duration: float) -> tuple[list[TimedWord], list[TimedPhone]]:
    """Words (with their text) and espeak-ng phones, each with start/end in seconds."""
    end_time = duration
    for event in events:
        if event.kind in (EVENT_END, EVENT_MSG_TERMINATED):
            end_time = min(end_time, max(event.time, 0.0)) if event.time > 0 else end_time
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
                alphabet="espeak",
                word_index=word_index if symbol != PAUSE else -1,
            )
        )
    words: list[TimedWord] = []
    for index, event in enumerate(word_events):
        spoken = [p for p in phones if p.word_index == index]
        start = spoken[0].start if spoken else event.time
        stop = spoken[-1].end if spoken else event.time
        # espeak-ng reports 1-based character positions (characters, not bytes, for UTF-8 input);
        # a word runs to the next word's position (its `length` is 0 for some languages).
        first = min(max(event.text_position - 1, 0), len(text))
        following = word_events[index + 1].text_position - 1 if index + 1 < len(word_events) else len(text)
        last = min(max(following, first + 1), len(text))
        words.append(TimedWord(text=text[first:last].strip() or text[first : first + 1], start=start, end=stop))
    return words, phones


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
