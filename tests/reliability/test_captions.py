"""Captions as written (issue 18): the author's numbers, currency and full-width punctuation, timed by
the words that say them; CJK cues break at punctuation or between words, never inside one; at most
two lines; a minimum time on screen. Real espeak-ng timings, in English and Chinese."""

from __future__ import annotations

import pytest
from conftest import espeak_template

from phoneme.captions import build_cues, to_srt, word_boundaries
from phoneme.espeak_engine import EspeakEngine
from phoneme.languages import language
from phoneme.speech import synthesize_speech

ZH_LONG = (
    "您好，这里是客服中心。我们银行的客服中心每天为广大客户提供账户查询转账汇款理财咨询以及信用卡分期还款服务"
    "一年期定期存款的利率是3.5%，五年期为¥1,000起存。"
)


def _speak(text: str, language: str, settings):
    artifact = synthesize_speech(text, espeak_template(language), settings, EspeakEngine)
    return artifact.timings()


def _cut_offsets(cues) -> list[int]:
    """Offsets in the written text (no spaces between CJK cues) where a cue or a line ends."""
    offsets, position = [], 0
    for cue in cues:
        for line in cue.lines[:-1]:
            offsets.append(position + len(line))
        position += len(cue.text)
        offsets.append(position)
    return offsets[:-1]


def test_chinese_cues_break_between_words_and_keep_what_was_written(settings):
    timings = _speak(ZH_LONG, "zh", settings)
    cues = build_cues(timings.words, "zh")
    assert "".join(cue.text for cue in cues) == ZH_LONG  # full-width ，。 kept, 3.5% and ¥1,000 as written
    assert "三" not in "".join(c.text for c in cues)  # never the spoken form of the number
    boundaries = word_boundaries(ZH_LONG)
    for offset in _cut_offsets(cues):  # every cue and line break falls between two words
        assert offset in boundaries, f"cut inside a word: {ZH_LONG[offset - 3 : offset]}|{ZH_LONG[offset : offset + 3]}"
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2 and all(
            len(line) <= language("zh").captions.line_chars for line in cue.lines
        ), cue.lines
        assert "\n".join(cue.lines).replace("\n", "") == cue.text
    assert not any(cue.text.endswith("客服中") for cue in cues)  # the reported "客服中 / 心。"
    # timed by the speech: the cue showing "3.5%，" is up while the voice says "三点五"
    said = next(w for w in timings.words if w.text.startswith("3.5%"))
    shown = next(c for c in cues if "3.5%" in c.text)
    assert shown.start <= said.start + 1e-6 and shown.end >= said.end - 1e-6
    srt = to_srt(cues)
    assert "¥1,000起存。" in srt and "，" in srt


def test_english_cues_show_numbers_and_currency_as_written_in_two_lines_at_most(settings):
    text = (
        "Your one-year deposit of $1,200 earns 3.5% a year, which is $42, paid on 31 December; "
        "the five-year rate is 4.25%, and early withdrawal costs £15."
    )
    timings = _speak(text, "en", settings)
    cues = build_cues(timings.words, "en")
    assert " ".join(cue.text for cue in cues) == text
    assert all(len(cue.lines) <= 2 and all(len(line) <= 42 for line in cue.lines) for cue in cues)
    shown = to_srt(cues)
    for written in ("$1,200", "3.5%", "$42,", "4.25%,", "£15."):
        assert written in shown
    assert "percent" not in shown and "dollars" not in shown
    for cue in cues[:-1]:  # lines break after a comma-like mark when one is near
        assert cue.lines[-1][-1] in ",;." or len(cue.text) > 60, cue.lines


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_short_cue_stays_up_for_a_second(settings, language):
    text = "Hi." if language == "en" else "好。"
    timings = _speak(text, language, settings)
    (cue,) = build_cues(timings.words, language)
    assert cue.end - cue.start >= 1.0 - 1e-6 and cue.text == text
