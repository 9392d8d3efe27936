"""Languages are data: config/languages/<code>.yaml, read by phoneme/languages.py.

A language is added by its file and a voice in config/voices.yaml: a small Greek file in a copy of
the languages folder is picked up by the speech plan, the charset check, the captions and the speech
stage; copies of the Chinese and Japanese files under new codes behave exactly as the originals (all
that makes them unspaced, segmented, and read the way they are is in their files).
"""

from __future__ import annotations

import shutil

import pytest

import phoneme.languages
from config import load_settings, load_voices
from config.errors import ConfigError
from phoneme.artifacts import TimedWord
from phoneme.captions import break_allowed, build_cues
from phoneme.engines import make_engine
from phoneme.errors import SpeechError
from phoneme.languages import LANGUAGES_DIR, language, languages
from phoneme.plan import plan_text
from phoneme.speech import resolve_voice, synthesize_speech
from phoneme.tts import VoiceResources

GREEK = """\
name: Greek
scripts: [GREEK]
symbols:
  words: {'&': και, '%': τοις εκατό, €: ευρώ}
  currency: {€: ευρώ}
  percent: '{n} τοις εκατό'
numerals:
  minus: μείον
  range: '{a} έως {b}'
  clock: '{h} και {m}'
  hour: '{h} ακριβώς'
  months: [Ιανουαρίου, Φεβρουαρίου, Μαρτίου, Απριλίου, Μαΐου, Ιουνίου, Ιουλίου, Αυγούστου, Σεπτεμβρίου, Οκτωβρίου,
           Νοεμβρίου, Δεκεμβρίου]
  date: '{d} {month} {y}'
  date_order: DMY
  plus: συν
"""
ZH_TEXT = "我的IBAN账户 online banking，客服中心电话是+86 10 1234 5678。2026年12月7日14:05，温度是-3.5°C，价格是¥100。"
JA_TEXT = "きょうは3.5パーセント、2026/12/1の9:05に、5 €と20°Cです。"


@pytest.fixture
def languages_folder(tmp_path, monkeypatch):
    """A copy of the shipped languages folder, in use for the test."""
    folder = tmp_path / "languages"
    shutil.copytree(LANGUAGES_DIR, folder)
    monkeypatch.setattr(phoneme.languages, "LANGUAGES_DIR", folder)
    return folder


def test_the_shipped_languages_load():
    assert sorted(languages()) == ["de", "en", "es", "fr", "ja", "ko", "zh"]
    assert language("zh").captions.line_chars == 16 and not language("zh").spaced
    assert language("it").numerals is None and language("it").scripts is None  # no file: no tables
    with pytest.raises(SpeechError, match=r"the 'el' voice cannot speak: \"€\" \(symbol\)"):
        plan_text("Στις 5 €", "el", 1000)  # no file: a language that says no symbols
    assert plan_text("Στις 14:30, 5-10.", "el", 1000).spoken_text == "Στις 14:30, 5-10."  # nor rewrites numbers


def test_a_new_language_file_is_picked_up_by_speech_and_captions(languages_folder, tmp_path):
    (languages_folder / "el.yaml").write_text(GREEK, encoding="utf-8")  # before the folder is first read

    plan = plan_text("Στις 14:30, 5-10 € & 20 % κάθε 7/12/2026.", "el", 1000)
    assert plan.spoken_text == "Στις 14 και 30, 5 έως 10 ευρώ και 20 τοις εκατό κάθε 7 Δεκεμβρίου 2026."
    assert plan.written_text == "Στις 14:30, 5-10 € & 20 % κάθε 7/12/2026."
    with pytest.raises(SpeechError, match=r"the Greek voice cannot speak: \"Привет\" \(Cyrillic\)"):
        plan_text("Привет", "el", 1000)
    with pytest.raises(SpeechError, match="render it with language el or remove them"):
        plan_text("Καλημέρα", "en", 1000)  # another language's refusal names the new one that can say it

    voices_file = tmp_path / "voices.yaml"
    voices_file.write_text(
        "default_voice: {el: el-female}\nvoices:\n  el-female: {language: el, espeak_voice: el+f3}\n",
        encoding="utf-8",
    )
    voices, defaults = load_voices(path=voices_file)
    voice = resolve_voice("el", None, voices, defaults)
    settings = load_settings(home=tmp_path / "home")
    resources = VoiceResources({}, {})
    speech = synthesize_speech("Γεια σου & καλημέρα, 20 %.", voice, settings, lambda: make_engine(voice, resources))
    timings = speech.timings()
    assert [w.text for w in timings.words] == ["Γεια", "σου", "&", "καλημέρα,", "20 %."]
    assert timings.spoken_text == "Γεια σου και καλημέρα, 20 τοις εκατό."
    starts = [w.start for w in timings.words]
    assert starts == sorted(starts) and timings.words[-1].end <= timings.duration
    assert all(w.end - w.start > 0.05 for w in timings.words)  # each word is said, measured by espeak-ng's events
    cues = build_cues(timings.words, "el")
    assert [c.text for c in cues] == ["Γεια σου & καλημέρα, 20 %."]


@pytest.mark.parametrize(("original", "copy", "text"), [("zh", "zz", ZH_TEXT), ("ja", "jj", JA_TEXT)])
def test_a_copy_of_a_language_under_a_new_code_behaves_as_the_original(languages_folder, original, copy, text):
    shutil.copy(languages_folder / f"{original}.yaml", languages_folder / f"{copy}.yaml")
    first, second = plan_text(text, original, 1000), plan_text(text, copy, 1000)
    assert [(w.text, w.spoken, w.space_before) for w in first.words] == [
        (w.text, w.spoken, w.space_before) for w in second.words
    ]
    assert first.spoken_text == second.spoken_text and len(first.words) >= 20
    timed = [(w.text, w.space_before) for w in first.words]
    words = [TimedWord(t, i * 0.2, i * 0.2 + 0.15, space_before=s) for i, (t, s) in enumerate(timed)]
    assert break_allowed(words, original) == break_allowed(words, copy)  # Chinese: jieba's word ends
    assert [c.lines for c in build_cues(words, original)] == [c.lines for c in build_cues(words, copy)]
    assert max(len(line) for c in build_cues(words, copy) for line in c.lines) <= 16


def test_a_typo_in_a_language_file_is_one_line_naming_the_file_and_key(languages_folder):
    (languages_folder / "el.yaml").write_text(GREEK.replace("scripts:", "script:"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"el.yaml: script: Extra inputs are not permitted"):
        language("el")
