"""Speech stage on the real espeak-ng (espeakng-loader build) and g2p-en, offline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import espeak_template

from config import load_visemes_table, load_voices
from phoneme.errors import SpeechError
from phoneme.espeak_engine import EspeakEngine
from phoneme.normalize import normalize_english, normalize_text
from phoneme.number_words import cardinal, ordinal
from phoneme.speech import resolve_voice, synthesize_speech
from phoneme.tts import read_wav
from phoneme.visemes import VisemeTable, build_keyframes


def test_numbers_percent_and_hyphen_are_spoken_as_words():
    assert normalize_english("the 1-year 3.5% rate") == "the one year three point five percent rate"
    assert (
        normalize_english("Pay $1,250.50 on the 21st.")
        == "Pay one thousand two hundred fifty dollars and fifty cents on the twenty first."
    )
    assert normalize_english("e.g. Dr. Smith") == "for example doctor Smith"


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (105, "one hundred five"),
        (999, "nine hundred ninety-nine"),
        (1_000_001, "one million one"),
        (2_500_000_000, "two billion five hundred million"),
        (12_345, "twelve thousand three hundred forty-five"),
    ],
)
def test_cardinal_numbers(number, words):
    assert cardinal(number) == words


@pytest.mark.parametrize(
    ("words", "expected"),
    [("one", "first"), ("twelve", "twelfth"), ("twenty", "twentieth"), ("forty-two", "forty-second")],
)
def test_ordinal_numbers(words, expected):
    assert ordinal(words) == expected


@pytest.mark.parametrize("text", ["", "   ", "?!..."])
def test_empty_or_unspeakable_text_is_refused(text):
    with pytest.raises(SpeechError, match=r"empty|nothing speakable"):
        normalize_text(text, "en", max_chars=100)


def test_text_over_the_limit_names_the_limit_and_the_fix():
    with pytest.raises(SpeechError, match="over the limit of 50; split it"):
        normalize_text("a" * 51, "en", max_chars=50)


def test_unknown_language_lists_the_configured_ones():
    voices, defaults = load_voices()
    with pytest.raises(SpeechError, match=r"unknown language 'xx'.*en"):
        resolve_voice("xx", None, voices, defaults)


def _speak(text, language, settings):
    from phoneme.g2p import OfflineG2p

    voice = espeak_template(language)  # the neural voice's timings: tests/test_kokoro.py
    return synthesize_speech(text, voice, settings, EspeakEngine, lambda: OfflineG2p(settings.paths.nltk_data))


def test_english_timings_match_the_audio_and_carry_arpabet(settings):
    artifact = _speak("Please bring the papers.", "en", settings)
    timings = artifact.timings()
    samples, rate = read_wav(artifact.wav_path)
    assert abs(len(samples) / rate - timings.duration) < 1e-6
    starts = [p.start for p in timings.phones]
    assert starts == sorted(starts) and timings.phones[-1].end <= timings.duration + 1e-6
    arpabet = [p.symbol for p in timings.phones if p.alphabet == "arpabet"]
    assert arpabet[:4] == ["P", "L", "IY", "Z"] and "B" in arpabet
    # The word "bring" starts where espeak-ng produced its /b/: there the audio is near-silent
    # (the closure) and it gets loud within 120 ms (the vowel).
    bring = next(w for w in timings.words if w.text.lower().startswith("bring"))
    audio = np.abs(samples.astype(float))
    at = int(bring.start * rate)
    assert audio[at : at + int(0.12 * rate)].max() > 5 * (audio[at : at + int(0.01 * rate)].mean() + 1)


def test_speech_is_cached_by_content(settings):
    first = _speak("Cache me once.", "en", settings)
    second = _speak("Cache me once.", "en", settings)
    assert not first.cache_hit and second.cache_hit and first.wav_path == second.wav_path


def test_mandarin_is_spoken_as_mandarin_not_english_letters(settings):
    timings = _speak("你好", "zh", settings).timings()
    symbols = [p.symbol for p in timings.phones if p.symbol != "_"]
    assert symbols[:2] == ["n", "i"], symbols  # Debian's espeak-ng would say "ni three hao three"
    assert 0.3 < timings.duration < 1.5


def test_visemes_close_the_lips_for_p_b_m(settings):
    timings = _speak("Bob paid me.", "en", settings).timings()
    track = build_keyframes(timings, VisemeTable(load_visemes_table()), settings.motion)
    bilabials = [p for p in timings.phones if p.symbol in ("B", "P", "M")]
    assert len(bilabials) == 4
    for phone in bilabials:
        assert any(start <= phone.start - 0.01 and end >= phone.end - 1e-6 for start, end in track.closures), phone
    times = [k.time for k in track.keyframes]
    assert times == sorted(times) and times[0] == 0.0 and times[-1] == pytest.approx(timings.duration, abs=1e-3)


def test_g2p_never_calls_the_nltk_downloader(tmp_path):
    code = (
        "import nltk\n"
        "def refuse(*a, **k): raise SystemExit('nltk.download was called')\n"
        "nltk.download = refuse\n"
        "from phoneme.g2p import OfflineG2p\n"
        "g = OfflineG2p()\n"
        "print(g.tagger_name, g.words(['deposit', 'zyxplorant']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NLTK_DATA": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "heuristic" in result.stdout and "'D', 'AH0', 'P'" in result.stdout


def test_loudness_envelope_stays_on_the_sound_for_ten_minutes():
    """Value i of the envelope is the sound at i × 10 ms exactly, at 22050 Hz too (a whole-sample hop
    of 220 samples put it 0.23 % late: 1.4 s after ten minutes, and the lips lagged the voice)."""
    from phoneme.visemes import loudness_envelope

    rate = 22050
    samples = (1000 * np.sin(np.arange(rate * 610) * 0.2)).astype(np.int16)  # a steady hum (the 95th percentile)
    bursts = (1.0, 300.0, 600.0)
    for t in bursts:  # 20 ms tone bursts
        start = round(t * rate)
        samples[start : start + rate // 50] = (8000 * np.sin(np.arange(rate // 50) * 0.3)).astype(np.int16)
    envelope = np.asarray(loudness_envelope(samples, rate))
    assert abs(len(envelope) - 61000) <= 1
    for t in bursts:
        centre = t + 0.01  # the burst's middle
        window = envelope[round(centre * 100) - 10 : round(centre * 100) + 11]
        loudest = np.flatnonzero(window >= window.max() - 1e-6)  # clipped at 1: the middle of the plateau
        assert window.max() == 1.0 and abs(loudest.mean() - 10) <= 1, (t, window.round(2))
