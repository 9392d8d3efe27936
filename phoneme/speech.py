"""Speech stage: text → WAV + word/phone timings, cached by a hash of everything that affects them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config import Settings, VoiceTemplate
from config.files import atomic_path, content_hash
from phoneme.align import espeak_timings, refine_with_arpabet
from phoneme.artifacts import SpeechTimings
from phoneme.errors import SpeechError
from phoneme.normalize import normalize_text
from phoneme.tts import TTSEngine, write_wav

SPEECH_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SpeechArtifact:
    key: str
    wav_path: Path
    timings_path: Path
    cache_hit: bool

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
    engine_factory,
    g2p_factory=None,
) -> SpeechArtifact:
    """Speak `text`; reuse the cached WAV and timings when the same input was spoken before.

    `engine_factory` and `g2p_factory` are called only on a cache miss, so a cache hit does not pay
    for loading espeak-ng or g2p-en.
    """
    spoken = normalize_text(text, voice.language, settings.text.max_chars, settings.text.min_chars)
    key = content_hash({"v": SPEECH_FORMAT_VERSION, "text": spoken, "voice": voice.__dict__})
    folder = settings.paths.cache / "speech"
    wav_path, timings_path = folder / f"{key}.wav", folder / f"{key}.json"
    if wav_path.is_file() and timings_path.is_file():
        return SpeechArtifact(key, wav_path, timings_path, cache_hit=True)
    engine: TTSEngine = engine_factory()
    result = engine.synthesize(spoken, voice)
    if result.duration <= 0.05:
        raise SpeechError(f"the TTS engine produced no audio for voice '{voice.name}'; check the text and voice")
    words, phones = espeak_timings(spoken, result.events, result.duration)
    if voice.g2p == "arpabet" and g2p_factory is not None:
        phones = refine_with_arpabet(words, phones, g2p_factory().words([w.text for w in words]))
    timings = SpeechTimings(
        text=text,
        spoken_text=spoken,
        language=voice.language,
        voice=voice.name,
        duration=result.duration,
        sample_rate=result.sample_rate,
        words=words,
        phones=phones,
    )
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(wav_path) as temporary:
        write_wav(temporary, result.samples, result.sample_rate)
    with atomic_path(timings_path) as temporary:
        timings.to_json(temporary)
    return SpeechArtifact(key, wav_path, timings_path, cache_hit=False)
