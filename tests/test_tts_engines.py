"""The TTS engine registry: an engine is one module, `phoneme/<name>_engine.py`, found by its name.

A tiny engine (a 220 Hz tone per word, after a short closure) is dropped into the phoneme package's
search path, and a voice naming it is spoken through the speech stage: the registry, the speech plan,
the timing code and the WAV writer all take it with no other file changed.
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import phoneme
from config import VoiceTemplate, load_voices
from phoneme.engines import available_engines, check_voice, describe_voice, engine_spec, make_engine, models_for
from phoneme.errors import SpeechError
from phoneme.tts import VoiceResources, read_wav

SINE_ENGINE = textwrap.dedent(
    '''
    """A test engine: each word is a closure (silence, phone "m") then a 220 Hz tone (phone "a")."""

    from __future__ import annotations

    import re

    import numpy as np

    from config import VoiceTemplate
    from phoneme.tts import (EVENT_END, EVENT_PHONEME, EVENT_WORD, EngineInfo, EngineSpec, RawEvent,
                             SynthesisResult, VoiceResources)

    RATE = 16000
    CLOSED_S, OPEN_S, TONE_HZ = 0.08, 0.16, 220.0


    class SineEngine:
        name = "sine"

        def sentence_counts(self) -> None:
            return None

        def synthesize(self, text: str, voice: VoiceTemplate) -> SynthesisResult:
            events, pieces, time = [], [], 0.0
            for match in re.finditer(r"\\S+", text):
                position = match.start() + 1  # espeak-ng's 1-based character positions
                events.append(RawEvent(EVENT_WORD, time, position, len(match.group()), ""))
                events.append(RawEvent(EVENT_PHONEME, time, position, 0, "m"))
                pieces.append(np.zeros(round(CLOSED_S * RATE)))
                time += CLOSED_S
                events.append(RawEvent(EVENT_PHONEME, time, position, 0, "a"))
                pieces.append(0.5 * np.sin(2 * np.pi * TONE_HZ * np.arange(round(OPEN_S * RATE)) / RATE))
                time += OPEN_S
            events.append(RawEvent(EVENT_END, time, len(text), 0, ""))
            samples = (np.concatenate(pieces) * 32767).astype(np.int16)
            return SynthesisResult(samples=samples, sample_rate=RATE, events=events)


    ENGINE = EngineSpec(
        name="sine",
        fields=(),
        models=(),
        create=lambda resources: SineEngine(),
        describe=lambda voice, hashes: EngineInfo(engine="sine", version="1", license="test"),
    )
    '''
)


@pytest.fixture
def sine_engine(tmp_path, monkeypatch):
    """`phoneme/sine_engine.py`, as if added to the package (its folder joins the package's path)."""
    (tmp_path / "sine_engine.py").write_text(SINE_ENGINE, encoding="utf-8")
    monkeypatch.setattr(phoneme, "__path__", [*phoneme.__path__, str(tmp_path)])
    yield
    sys.modules.pop("phoneme.sine_engine", None)


def sine_voice() -> VoiceTemplate:
    return VoiceTemplate(name="en-sine", language="en", engine="sine", espeak_voice="en-us")


def test_the_shipped_engines_are_found_by_their_modules():
    assert available_engines() == ("espeak", "kokoro")
    voices, _ = load_voices()
    assert models_for(voices["en-us-neural-female"]) == ("kokoro_82m", "kokoro_styles", "kokoro_vocab")
    assert models_for(voices["en-us-female"]) == ()
    assert describe_voice(voices["en-us-female"], {}).engine == "espeak-ng"
    for name in available_engines():  # what each engine says it reads is a voice-template field
        assert set(engine_spec(name).fields) <= set(VoiceTemplate.model_fields), name


def test_an_unknown_engine_is_refused_naming_the_engines():
    voice = sine_voice()
    with pytest.raises(SpeechError, match="unknown TTS engine 'sine'; available: espeak, kokoro"):
        check_voice(voice)


def test_a_new_engine_module_is_picked_up_and_speaks_through_the_speech_stage(sine_engine, settings, tmp_path):
    from pipeline.stages import speak

    assert available_engines() == ("espeak", "kokoro", "sine")
    voices_file = tmp_path / "voices.yaml"
    voices_file.write_text(
        "default_voice: {en: en-sine}\nvoices:\n  en-sine: {language: en, engine: sine, espeak_voice: en-us}\n",
        encoding="utf-8",
    )
    voice = load_voices(path=voices_file)[0]["en-sine"]
    assert voice == sine_voice()
    check_voice(voice)
    assert models_for(voice) == ()
    assert describe_voice(voice, {}).engine == "sine"
    assert type(make_engine(voice, VoiceResources({}, {}))).__name__ == "SineEngine"

    speech = speak("Hello there, 5 €.", voice, settings)
    timings = speech.timings()
    assert [w.text for w in timings.words] == ["Hello", "there,", "5 €."]
    assert timings.spoken_text == "Hello there, five euros."  # the plan's words, said by the new engine
    # Four spoken words of 0.24 s: "5 €" is said as two and is captioned by both.
    bounds = [t for w in timings.words for t in (w.start, w.end)]
    assert bounds == pytest.approx([0, 0.24, 0.24, 0.48, 0.48, 0.96], abs=1e-4)
    assert [p.symbol for p in timings.phones] == ["m", "a"] * 4
    samples, rate = read_wav(speech.wav_path)
    assert rate == 16000 and len(samples) == round(0.96 * rate)
    # Measured in the written WAV: silence where the engine said "m", its tone where it said "a".
    for phone in timings.phones:
        part = samples[round(phone.start * rate) + 80 : round(phone.end * rate) - 80].astype(np.float64)
        loudness = np.sqrt(np.mean(part**2)) / 32767
        if phone.symbol == "m":
            assert loudness < 1e-3
        else:
            assert loudness == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
            spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part)), n=rate))
            assert np.argmax(spectrum) == pytest.approx(220, abs=2)
