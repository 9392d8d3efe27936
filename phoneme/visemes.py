"""Phones → viseme keyframes with coarticulation.

Rules (all timing constants come from `MotionSettings`):
- anticipation: each mouth target is reached slightly before its sound;
- minimum shape duration: a phone shorter than `min_shape_s` gets no keyframe of its own (its
  neighbours' shapes blend over it) unless it closes the lips;
- closure before plosives: P/B/M keep the lips shut from `closure_lead_s` before the phone until
  its end (the release), recorded as closure spans that the driver enforces after smoothing;
- rest at pauses: a silence longer than `pause_rest_s` relaxes to the rest shape;
- smooth transitions are made by the driver (interpolation + smoothing between keyframes).
Accents (stressed words, where brows rise and the head nods) are the loudest syllables of the words
whose loudness peak stands out in their phrase, and the last word of a question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from config import MotionSettings
from phoneme.align import PAUSE
from phoneme.artifacts import Accent, SpeechTimings, TimedPhone, TimedWord, VisemeKeyframe, VisemeTrack

PARAMETERS = ("jaw_open", "lip_width", "lip_round", "lip_closure", "teeth", "tongue")
OPTIONAL_PARAMETERS = {"tongue": 0.0}
QUESTION_MARKS = ("?", "？")
ACCENT_MIN_PEAK = 0.55  # a word's loudness peak (0..1) below this is never an accent
ACCENT_MIN_GAP_S = 0.6  # accents closer than this: the weaker one is dropped


@dataclass(frozen=True)
class VisemeShape:
    name: str
    jaw_open: float
    lip_width: float
    lip_round: float
    lip_closure: float
    teeth: float
    tongue: float = 0.0


class VisemeTable:
    """The viseme set and the phone → viseme maps of `config/visemes.yaml`."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.shapes = {
            key: VisemeShape(
                name=spec.get("name", key), **{p: float(spec.get(p, OPTIONAL_PARAMETERS.get(p))) for p in PARAMETERS}
            )
            for key, spec in raw["visemes"].items()
        }
        self.closure = raw["closure_viseme"]
        self.rest = raw["rest_viseme"]
        self.arpabet = dict(raw["arpabet"])
        self.espeak_exact = dict(raw["espeak_exact"])
        self.espeak_first = dict(raw["espeak_first_char"])
        self.ipa_exact = dict(raw.get("ipa_exact") or {})
        self.ipa_first = dict(raw.get("ipa_first_char") or {})
        self.default = raw["default_viseme"]
        for mapping in (self.arpabet, self.espeak_exact, self.espeak_first, self.ipa_exact, self.ipa_first):
            unknown = sorted(set(mapping.values()) - set(self.shapes))
            if unknown:
                raise ValueError(f"visemes.yaml maps phones to undefined visemes {unknown}")

    def viseme_for(self, phone: TimedPhone) -> str:
        if phone.symbol == PAUSE:
            return self.rest
        if phone.alphabet == "arpabet":
            return self.arpabet.get(phone.symbol.rstrip("012"), self.default)
        symbol = phone.symbol
        if phone.alphabet == "ipa":
            if symbol in self.ipa_exact:
                return self.ipa_exact[symbol]
            return self.ipa_first.get(symbol[:1], self.default)
        if symbol in self.espeak_exact:
            return self.espeak_exact[symbol]
        return self.espeak_first.get(symbol[:1], self.default)

    def keyframe(self, time: float, viseme: str) -> VisemeKeyframe:
        shape = self.shapes[viseme]
        return VisemeKeyframe(time=round(time, 4), viseme=viseme, **{p: getattr(shape, p) for p in PARAMETERS})


def loudness_envelope(samples: np.ndarray, rate: int, hop_s: float = 0.01, window_s: float = 0.06) -> list[float]:
    """Speech loudness in 0..1 every `hop_s`: RMS amplitude over a Hann window, divided by its 95th
    percentile. Linear amplitude, not decibels: jaw opening in speech grows roughly with the sound's
    amplitude (open vowels are loud, consonants quiet), and a log scale would lift quiet consonants
    and pauses to half-open mouths. The driver builds most of the jaw opening from this curve."""
    audio = samples.astype(np.float32) / 32768.0
    window = int(rate * window_s)
    if len(audio) < window or rate * hop_s < 1:
        return []
    weights = np.hanning(window).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(audio, (window // 2, window // 2)), window)
    # Value i is centred on sample round(i · rate · hop_s), exactly i · hop_s seconds. A whole-sample
    # hop (220 at 22050 Hz for 10 ms) would put value i at 9.977 ms · i while every reader takes it
    # as 10 ms · i: the mouth drifted 0.23 % behind the sound, 1.4 s by the end of a 10-minute text.
    centres = np.round(np.arange(int(len(audio) / (rate * hop_s)) + 1) * rate * hop_s).astype(np.int64)
    centres = centres[centres < len(windows)]
    # In blocks: the squared windows of a whole 10-minute text at once took ~900 MB.
    rms = np.concatenate(
        [
            np.sqrt((windows[block] ** 2 * weights).sum(axis=1) / weights.sum())
            for block in np.array_split(centres, 1 + len(centres) // 2000)
        ]
    )
    reference = float(np.percentile(rms, 95))
    if reference <= 1e-6:
        return [0.0] * len(rms)
    return [round(float(v), 4) for v in np.clip(rms / reference, 0, 1)]


def build_keyframes(
    timings: SpeechTimings, table: VisemeTable, motion: MotionSettings, envelope: list[float] | None = None
) -> VisemeTrack:
    duration = timings.duration
    keyframes: list[VisemeKeyframe] = [table.keyframe(0.0, table.rest)]
    closures: list[tuple[float, float]] = []
    lead = motion.anticipation_s
    for phone in timings.phones:
        viseme = table.viseme_for(phone)
        length = phone.end - phone.start
        if viseme == table.rest:
            if length >= motion.pause_rest_s:
                keyframes.append(table.keyframe(phone.start + 0.08, table.rest))
                keyframes.append(table.keyframe(phone.end - 0.08, table.rest))
            continue
        if viseme == table.closure:
            begin = max(0.0, phone.start - motion.closure_lead_s)
            closures.append((round(begin, 4), round(phone.end, 4)))
            keyframes.append(table.keyframe(begin, viseme))
            keyframes.append(table.keyframe(max(begin, phone.end - 0.01), viseme))
            continue
        if length < motion.min_shape_s:
            continue
        peak = phone.start + min(0.5 * length, 0.05) - lead
        keyframes.append(table.keyframe(max(0.0, peak), viseme))
        if length > 0.2:
            keyframes.append(table.keyframe(phone.end - lead - 0.03, viseme))
    keyframes.append(table.keyframe(duration, table.rest))
    keyframes.sort(key=lambda k: k.time)
    return VisemeTrack(
        duration=duration,
        keyframes=_drop_crowded(keyframes),
        closures=_merge(closures),
        envelope=list(envelope or []),
        envelope_rate=ENVELOPE_RATE,
        accents=find_accents(timings, envelope or []),
    )


ENVELOPE_RATE = 100.0


def _word_peak(word: TimedWord, envelope: list[float]) -> tuple[float, float]:
    """(time, loudness) of the loudest moment inside the word."""
    first, last = int(word.start * ENVELOPE_RATE), int(word.end * ENVELOPE_RATE) + 1
    values = envelope[first:last]
    if not values:
        return (word.start + word.end) / 2, 0.0
    index = int(np.argmax(values))
    return (first + index) / ENVELOPE_RATE, float(values[index])


def find_accents(timings: SpeechTimings, envelope: list[float]) -> list[Accent]:
    """Stressed words: a loudness peak above the speaker's typical peak, on a word long enough to
    carry stress; plus the last word of each question (brows rise on questions)."""
    spoken = timings.spoken_words or timings.words  # stress is in what is said ("one year"), not "1-year"
    following = {id(word): after for word, after in zip(spoken, [*spoken[1:], None], strict=True)}
    words = [w for w in spoken if w.end - w.start >= 0.12]
    if not words or not envelope:
        return []
    peaks = [_word_peak(word, envelope) for word in words]
    typical = float(np.median([loudness for _, loudness in peaks]))
    candidates: list[Accent] = []
    for word, (time, loudness) in zip(words, peaks, strict=True):
        after = following[id(word)]
        question = word.text.rstrip().endswith(QUESTION_MARKS) or (
            after is not None and after.text.strip().startswith(QUESTION_MARKS)
        )
        stands_out = loudness >= max(ACCENT_MIN_PEAK, typical) and (word.end - word.start) >= 0.2
        if stands_out or question:
            strength = float(np.clip((loudness - typical) / max(1.0 - typical, 1e-3) + 0.4, 0.3, 1.0))
            candidates.append(Accent(round(time, 3), round(strength, 3), question))
    kept: list[Accent] = []
    for accent in sorted(candidates, key=lambda a: (a.question, a.strength), reverse=True):
        if all(abs(accent.time - other.time) >= ACCENT_MIN_GAP_S for other in kept):
            kept.append(accent)
    return sorted(kept, key=lambda a: a.time)


def _drop_crowded(keyframes: list[VisemeKeyframe], gap: float = 0.02) -> list[VisemeKeyframe]:
    """Keep one keyframe per `gap` seconds, preferring closures: interpolation needs increasing times."""
    kept: list[VisemeKeyframe] = []
    for frame in keyframes:
        if kept and frame.time - kept[-1].time < gap:
            if frame.lip_closure >= kept[-1].lip_closure:
                kept[-1] = frame
            continue
        kept.append(frame)
    return kept


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 0.02:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
