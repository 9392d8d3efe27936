"""espeak-ng's IPA phones → Kokoro tokens, and the text's punctuation → Kokoro's.

Why espeak-ng's phones and not a second G2P: the project already ships espeak-ng, its phoneme events
carry each phone's word and text position (captions and visemes stay traceable to the written word),
and Kokoro v1.0 was trained on espeak-ng phonemes for es and fr and on misaki's for en, whose
conventions differ from espeak-ng's in a few symbols (config/kokoro_phonemes.yaml).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import CONFIG_DIR
from config.loader import read_yaml

PHONEME_MAP_FILE = CONFIG_DIR / "kokoro_phonemes.yaml"
STRESS = "ˈˌ"  # kept in front of the vowel they stress, as Kokoro was trained
STRONG_PUNCTUATION = ".!?"  # where a sentence ends: the model is run sentence by sentence


def load_vocabulary(path: Path) -> dict[str, int]:
    """Kokoro's phoneme → token id table (vocab.json)."""
    return {str(k): int(v) for k, v in json.loads(Path(path).read_text(encoding="utf-8"))["vocab"].items()}


@dataclass
class PhonemeMap:
    """Rewrites one language's espeak-ng IPA phones into Kokoro symbols; remembers what it dropped."""

    rules: dict[str, str]
    punctuation: dict[str, str]
    vocabulary: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)  # character → how often it was dropped

    def __post_init__(self) -> None:
        self._longest = max((len(key) for key in self.rules), default=1)

    @classmethod
    def for_language(cls, language: str, vocabulary: dict[str, int], raw: dict[str, Any] | None = None) -> PhonemeMap:
        raw = raw if raw is not None else read_yaml(PHONEME_MAP_FILE)
        rules = {**{str(k): str(v) for k, v in (raw.get("*") or {}).items()},
                 **{str(k): str(v) for k, v in (raw.get(language) or {}).items()}}  # fmt: skip
        punctuation = {str(k): str(v) for k, v in (raw.get("punctuation") or {}).items()}
        return cls(rules, punctuation, vocabulary)

    def phone(self, ipa: str) -> str:
        """Kokoro symbols for one espeak-ng phone (stress marks kept, unknown characters dropped)."""
        out: list[str] = []
        index = 0
        while index < len(ipa):
            for size in range(min(self._longest, len(ipa) - index), 0, -1):
                piece = ipa[index : index + size]
                if piece in self.rules:
                    out.append(self.rules[piece])
                    index += size
                    break
            else:
                out.append(ipa[index])
                index += 1
        return self._known("".join(out))

    def gap(self, written: str) -> str:
        """Kokoro symbols for the written text between two words: its strongest punctuation mark and a
        space where the text has a space or punctuation; nothing between CJK characters."""
        marks = [self.punctuation[c] for c in written if self.punctuation.get(c)]
        if not marks and not any(c.isspace() or c in self.punctuation for c in written):
            return ""
        strongest = next((m for m in marks if m in STRONG_PUNCTUATION), marks[0] if marks else "")
        return self._known(strongest + " ")

    def _known(self, symbols: str) -> str:
        kept = []
        for char in symbols:
            if char in self.vocabulary:
                kept.append(char)
            else:
                self.dropped[char] = self.dropped.get(char, 0) + 1
        return "".join(kept)

    def tokens(self, symbols: str) -> list[int]:
        return [self.vocabulary[c] for c in symbols]
