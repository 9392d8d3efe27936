"""Speech stage: text → WAV + word/phone timings, cached by a hash of everything that affects them.

The text is planned first (phoneme.plan): caption words as written, each with what is said for it.
Each chunk between <break>s is spoken by the voice's engine (espeak-ng, or Kokoro speaking espeak-ng's
phonemes); the caption words are timed by the spoken words that say them, so captions, speech and
visemes come from one source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from config import Settings, VoiceTemplate
from config.files import atomic_path, content_hash
from phoneme.align import PAUSE, caption_spans, espeak_timings, refine_with_arpabet, speech_end, word_spans
from phoneme.artifacts import SpeechTimings, TimedPhone, TimedWord
from phoneme.errors import SpeechError
from phoneme.plan import SpeechPlan, plan_text
from phoneme.tts import TTSEngine, write_wav

SPEECH_FORMAT_VERSION = 2  # 2: captions are the written words; <break> pauses; spoken words kept apart
BREAK_TAIL_S = 0.03  # sound kept after a chunk's last phone before a <break>'s silence (the decay)


@dataclass(frozen=True)
class SpeechArtifact:
    key: str
    wav_path: Path
    timings_path: Path
    cache_hit: bool
    sentences_synthesized: int | None = None  # neural voice: sentences its model ran for this speech
    sentences_cached: int | None = None  # ... and sentences it took from the sentence cache

    def timings(self) -> SpeechTimings:
        return SpeechTimings.from_json(self.timings_path)


def resolve_voice(
    language: str, voice_name: str | None, voices: dict[str, VoiceTemplate], defaults: dict[str, str]
) -> VoiceTemplate:
    """The voice template for a language; unknown languages/voices get an error listing what exists."""
    if voice_name is None:
        if language not in defaults:
            raise SpeechError(
                f"unknown language '{language}'; configured: {', '.join(sorted(defaults))} "
                "(add it to config/voices.yaml)"
            )
        voice_name = defaults[language]
    if voice_name not in voices:
        raise SpeechError(f"unknown voice '{voice_name}'; configured: {', '.join(sorted(voices))}")
    voice = voices[voice_name]
    if voice.language != language:
        raise SpeechError(f"voice '{voice_name}' speaks '{voice.language}', not '{language}'; pick a matching voice")
    return voice


def synthesize_speech(
    text: str,
    voice: VoiceTemplate,
    settings: Settings,
    engine_factory: Callable[[], TTSEngine],
    g2p_factory=None,
    engine_identity: dict[str, object] | None = None,
) -> SpeechArtifact:
    """Speak `text`; reuse the cached WAV and timings when the same input was spoken before.

    `engine_factory` and `g2p_factory` are called only on a cache miss, so a cache hit does not pay
    for loading espeak-ng, Kokoro or g2p-en. `engine_identity` (a neural voice's model sha256) is part
    of the cache key: another model never reuses this one's speech.
    """
    plan = plan_text(text, voice.language, settings.text.max_chars, settings.text.min_chars)
    identity = {"engine": engine_identity} if engine_identity else {}  # absent: espeak-ng keys as before
    key = content_hash({"v": SPEECH_FORMAT_VERSION, "plan": plan.key(), "voice": voice.__dict__, **identity})
    folder = settings.paths.cache / "speech"
    wav_path, timings_path = folder / f"{key}.wav", folder / f"{key}.json"
    if wav_path.is_file() and timings_path.is_file():
        return SpeechArtifact(key, wav_path, timings_path, cache_hit=True)
    engine = engine_factory()
    spoken = speak_plan(plan, voice, engine)
    if spoken.duration <= 0.05:
        raise SpeechError(f"the TTS engine produced no audio for voice '{voice.name}'; check the text and voice")
    phones = spoken.phones
    if voice.g2p == "arpabet" and g2p_factory is not None:
        arpabet = g2p_factory().words([w.text for w in spoken.spoken_words])
        phones = refine_with_arpabet(spoken.spoken_words, phones, arpabet)
    timings = SpeechTimings(
        text=text,
        spoken_text=plan.spoken_text,
        language=voice.language,
        voice=voice.name,
        duration=spoken.duration,
        sample_rate=spoken.sample_rate,
        words=spoken.captions,
        phones=phones,
        written_text=plan.written_text,
        spoken_words=spoken.spoken_words,
    )
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(wav_path) as temporary:
        write_wav(temporary, spoken.samples, spoken.sample_rate)
    with atomic_path(timings_path) as temporary:
        timings.to_json(temporary)
    synthesized, cached = engine.sentence_counts() or (None, None)
    return SpeechArtifact(key, wav_path, timings_path, False, synthesized, cached)


@dataclass(frozen=True)
class SpokenPlan:
    """The audio of a plan with espeak-ng's words and phones and the timed caption words."""

    samples: np.ndarray
    sample_rate: int
    spoken_words: list[TimedWord]
    phones: list[TimedPhone]
    captions: list[TimedWord]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def speak_plan(plan: SpeechPlan, voice: VoiceTemplate, engine: TTSEngine) -> SpokenPlan:
    """Say each chunk of the plan with silence for its <break>s, and time every caption word by the
    speech that says it. A caption word no speech covers is an error, never a silent caption."""
    audio: list[np.ndarray] = []
    spoken_words: list[TimedWord] = []
    phones: list[TimedPhone] = []
    said: dict[int, list[tuple[float, float]]] = {}
    rate = 0
    offset = 0.0

    def pause(seconds: float) -> None:
        nonlocal offset
        if seconds > 0 and rate:
            count = round(seconds * rate)
            audio.append(np.zeros(count, dtype=np.int16))
            phones.append(TimedPhone(PAUSE, offset, offset + count / rate, "espeak"))
            offset += count / rate

    chunks = plan.chunks()
    for number, chunk in enumerate(chunks):
        result = engine.synthesize(chunk.spoken, voice)
        rate = result.sample_rate
        if number == 0:
            pause(plan.lead_pause_s)
        words, chunk_phones = espeak_timings(chunk.spoken, result.events, result.duration, result.phone_alphabet)
        length = result.duration
        if chunk.pause_after_s > 0:
            length = min(result.duration, speech_end(chunk_phones, result.duration) + BREAK_TAIL_S)
        sounding = {p.word_index for p in chunk_phones if p.symbol != PAUSE}
        voiced = [i in sounding for i in range(len(words))]
        spans = word_spans(chunk.spoken, result.events)
        for owner, times in caption_spans(chunk.owners, spans, words, voiced).items():
            said.setdefault(owner, []).extend((offset + a, offset + b) for a, b in times)
        base = len(spoken_words)
        spoken_words += [replace(w, start=w.start + offset, end=w.end + offset) for w in words]
        for phone in chunk_phones:
            if phone.start >= length:
                continue
            phones.append(
                replace(
                    phone,
                    start=phone.start + offset,
                    end=min(phone.end, length) + offset,
                    word_index=phone.word_index + base if phone.word_index >= 0 else -1,
                )
            )
        audio.append(result.samples[: round(length * rate)])
        offset += round(length * rate) / rate
        pause(chunk.pause_after_s)
    unspoken = [word.text for index, word in enumerate(plan.words) if index not in said]
    if unspoken:
        shown = ", ".join(f'"{text}"' for text in unspoken[:4]) + (" ..." if len(unspoken) > 4 else "")
        who = f"espeak-ng voice '{voice.espeak_voice}'" if voice.engine == "espeak" else f"voice '{voice.name}'"
        raise SpeechError(f"{who} said nothing for {shown}; rewrite or remove those words")
    captions = [
        TimedWord(
            text=word.text,
            start=round(min(a for a, _ in said[index]), 4),
            end=round(max(b for _, b in said[index]), 4),
            space_before=word.space_before,
            break_after=word.pause_after_s > 0,
        )
        for index, word in enumerate(plan.words)
    ]
    samples = np.concatenate(audio) if audio else np.zeros(0, dtype=np.int16)
    return SpokenPlan(samples.astype(np.int16), rate or 22050, spoken_words, phones, captions)
