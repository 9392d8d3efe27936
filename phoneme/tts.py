"""The TTS interface: one `TTSEngine` protocol, the result every engine returns, WAV I/O.

Engines (phoneme/espeak_engine.py, phoneme/kokoro_engine.py) report what they said as espeak-ng-style
events (word and phoneme events with their audio times), whatever produced the audio: the timing
code downstream (phoneme.align) reads one format, and each engine times its phones exactly (espeak-ng
by where its synthesizer wrote them, Kokoro by the durations its duration predictor chose).
Each engine module declares itself with one `EngineSpec` named `ENGINE` (its name, the voice-template
fields it reads, its pinned models, how it is built, checked and described); phoneme/engines.py finds
the module of a voice's `engine:` by its file name, `phoneme/<name>_engine.py`.
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from config import VoiceTemplate

EVENT_WORD = 1
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7

PhoneAlphabet = Literal["espeak", "ipa"]


@dataclass(frozen=True)
class RawEvent:
    """An espeak-ng event: kind, audio time in seconds, text span (character offsets) and name."""

    kind: int
    time: float
    text_position: int
    length: int
    name: str


@dataclass(frozen=True)
class SynthesisResult:
    """Audio and the events that time it. `phone_alphabet` says how phoneme events are named:
    espeak-ng mnemonics ("'i:", "aI") or IPA ("iː", "aɪ")."""

    samples: np.ndarray  # int16 mono
    sample_rate: int
    events: list[RawEvent]
    phone_alphabet: PhoneAlphabet = "espeak"

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class EngineInfo:
    """What the report, the audit entry and the C2PA manifest say about the voice that spoke."""

    engine: str  # "espeak-ng" or "kokoro"
    version: str  # the engine's own version string (espeak-ng) or model name
    model_sha256: str | None = None  # the pinned model file, for neural engines
    license: str = ""
    style: str = ""  # Kokoro: the style or blend, e.g. "jf_gongitsune" or "jf_gongitsune*0.7+jf_nezumi*0.3"

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


class TTSEngine(Protocol):
    """Anything that can say text with a voice template and report when each phone happened."""

    name: str

    def synthesize(self, text: str, voice: VoiceTemplate) -> SynthesisResult: ...

    def sentence_counts(self) -> tuple[int, int] | None:
        """(sentences synthesized, sentences taken from a cache) since the engine was made; None for an
        engine that has no sentence cache."""
        ...


@dataclass(frozen=True)
class VoiceResources:
    """What engines may need, resolved by the caller: verified model files by registry name (only
    those of the engine's `models`), the sentence cache folder and the threads a model may use."""

    models: dict[str, Path]
    model_sha256: dict[str, str]
    sentence_cache: Path | None = None
    threads: int = 0


def no_check(voice: VoiceTemplate) -> None:
    """For engines whose voice-template fields the settings schema already validates in full."""


@dataclass(frozen=True)
class EngineSpec:
    """One TTS engine as the registry (phoneme/engines.py) sees it; each engine module exposes one as
    `ENGINE`, so that adding an engine touches no other module.

    `fields`: the voice-template fields (config.VoiceTemplate) the engine reads besides `name`,
    `language` and `g2p` (a voice's other fields are ignored by it). `models`: the pinned model names
    (config/models.lock.yaml) it loads, which the caller verifies and passes in `VoiceResources`.
    `create` builds it (only on a speech cache miss); `check` refuses options only the engine can
    judge, before any compute; `describe` says how the report, the audit entry and the C2PA manifest
    name it, with no model loaded."""

    name: str
    fields: tuple[str, ...]
    models: tuple[str, ...]
    create: Callable[[VoiceResources], TTSEngine]
    describe: Callable[[VoiceTemplate, dict[str, str]], EngineInfo]
    check: Callable[[VoiceTemplate], None] = no_check


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as handle:
        rate = handle.getframerate()
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return data, rate
