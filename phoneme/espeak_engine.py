"""The espeak-ng engine: formant synthesis, ~1000× faster than real time, every language espeak-ng has.

Its phoneme events carry espeak-ng's own mnemonics and the audio position where the synthesizer wrote
each phone, so timings match the audio exactly.
"""

from __future__ import annotations

from config import VoiceTemplate
from phoneme.espeak_runtime import espeak_session
from phoneme.tts import EngineInfo, EngineSpec, SynthesisResult, VoiceResources


class EspeakEngine:
    """espeak-ng through the shared session, phoneme events named by mnemonics."""

    name = "espeak-ng"

    def __init__(self) -> None:
        self._session = espeak_session()

    def sentence_counts(self) -> None:
        return None  # fast enough to need no sentence cache

    def synthesize(self, text: str, voice: VoiceTemplate) -> SynthesisResult:
        samples, events = self._session.synthesize(
            text, voice.espeak_voice, voice.rate, voice.pitch, template=voice.name
        )
        return SynthesisResult(samples=samples, sample_rate=self._session.sample_rate, events=events)


def _create(resources: VoiceResources) -> EspeakEngine:
    return EspeakEngine()


def _describe(voice: VoiceTemplate, model_sha256: dict[str, str]) -> EngineInfo:
    return EngineInfo(
        engine="espeak-ng",
        version=espeak_session().version(),
        license="GPL-3.0-or-later (espeak-ng)",
        style=voice.espeak_voice,
    )


ENGINE = EngineSpec(
    name="espeak",
    fields=("espeak_voice", "rate", "pitch"),
    models=(),
    create=_create,
    describe=_describe,
)
