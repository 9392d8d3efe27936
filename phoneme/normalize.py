"""Text validation and the spoken text: the entry points the pipeline calls before any compute.

The work is done by the speech plan (phoneme.plan): captions show the written words, speech says
each one's spoken form ("5€" is captioned "5€" and spoken "five euros"). These functions keep the
names the pipeline and batch validation use.
"""

from __future__ import annotations

from phoneme.plan import SpeechPlan, plan_text


def normalize_english(text: str) -> str:
    """English as espeak-ng and g2p-en say it ("the 1-year 3.5% rate" → "the one year three point five
    percent rate"); no length limits."""
    return plan_text(text, "en", max_chars=max(len(text), 1)).spoken_text


def normalize_text(text: str, language: str, max_chars: int, min_chars: int = 1) -> str:
    """Validate the text (one-line SpeechError naming the problem and the fix) and return what is spoken."""
    return plan_text(text, language, max_chars, min_chars).spoken_text


__all__ = ["SpeechPlan", "normalize_english", "normalize_text", "plan_text"]
