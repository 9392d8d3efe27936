"""Typed artifacts the speech stage writes and later stages read (JSON on disk)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TimedPhone:
    """One phone with its time span in seconds; `symbol` is ARPAbet, an espeak-ng mnemonic or IPA."""

    symbol: str
    start: float
    end: float
    alphabet: str  # "arpabet", "espeak" (mnemonics) or "ipa"
    word_index: int = -1


@dataclass(frozen=True)
class TimedWord:
    """A word with its time span. For captions: the word as written, whether a space precedes it in
    the written text (Chinese characters have none), and whether a <break> pause follows it."""

    text: str
    start: float
    end: float
    space_before: bool = True
    break_after: bool = False


@dataclass(frozen=True)
class SpeechTimings:
    """What the TTS engine said and when: the basis for visemes and captions.

    `words` are the caption words, as written (`written_text`), each timed by the speech that says
    it; `spoken_words` are espeak-ng's words of `spoken_text`, which `phones[].word_index` points to."""

    text: str
    spoken_text: str
    language: str
    voice: str
    duration: float
    sample_rate: int
    words: list[TimedWord] = field(default_factory=list)
    phones: list[TimedPhone] = field(default_factory=list)
    written_text: str = ""
    spoken_words: list[TimedWord] = field(default_factory=list)

    def to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def from_json(cls, path: Path) -> SpeechTimings:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["words"] = [TimedWord(**w) for w in data["words"]]
        data["spoken_words"] = [TimedWord(**w) for w in data.get("spoken_words", [])]
        data["phones"] = [TimedPhone(**p) for p in data["phones"]]
        return cls(**data)


@dataclass(frozen=True)
class VisemeKeyframe:
    """A mouth target at time `time` (seconds): the viseme name and its mouth parameters."""

    time: float
    viseme: str
    jaw_open: float
    lip_width: float
    lip_round: float
    lip_closure: float
    teeth: float
    tongue: float = 0.0  # tongue tip raised to the upper teeth (L, T, D, N, TH)


@dataclass(frozen=True)
class Accent:
    """A stressed word: when its loudest syllable peaks, and how strong it is (0..1). Brows rise and
    the head nods on some of them; `question` marks the last word of a question."""

    time: float
    strength: float
    question: bool = False


@dataclass(frozen=True)
class VisemeTrack:
    duration: float
    keyframes: list[VisemeKeyframe]
    closures: list[tuple[float, float]]  # spans (s) where the lips must be shut (P/B/M)
    envelope: list[float] = field(default_factory=list)  # speech loudness 0..1, `envelope_rate` per second
    envelope_rate: float = 100.0
    accents: list[Accent] = field(default_factory=list)

    def to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def from_json(cls, path: Path) -> VisemeTrack:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            duration=data["duration"],
            keyframes=[VisemeKeyframe(**k) for k in data["keyframes"]],
            closures=[tuple(c) for c in data["closures"]],
            envelope=data.get("envelope", []),
            envelope_rate=data.get("envelope_rate", 100.0),
            accents=[Accent(**a) for a in data.get("accents", [])],
        )
