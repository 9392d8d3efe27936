"""The registry of TTS engines: which engine speaks a voice template, what it needs, what it is.

One place for the engine of a voice (`engine:` in config/voices.yaml): building it, the pinned model
files it needs (verified by the caller's model registry, which lives above this package), and how the
report, the audit entry and the C2PA manifest name it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config import VoiceTemplate
from phoneme.errors import SpeechError
from phoneme.espeak_engine import EspeakEngine
from phoneme.espeak_runtime import espeak_session
from phoneme.kokoro_engine import KokoroEngine
from phoneme.kokoro_model import STYLE_NAMES, KokoroFiles, style_label
from phoneme.tts import EngineInfo, TTSEngine

KOKORO_MODEL = "kokoro_82m"
KOKORO_STYLES = "kokoro_styles"
KOKORO_VOCABULARY = "kokoro_vocab"
KOKORO_LICENSE = "Apache-2.0 (Kokoro-82M weights and voices, hexgrad); MIT (int8 ONNX export, kokoro-onnx)"


@dataclass(frozen=True)
class VoiceResources:
    """What engines may need, resolved by the caller: verified model files by registry name (only
    those of `models_for(voice)`), the sentence cache folder and the threads a model may use."""

    models: dict[str, Path]
    model_sha256: dict[str, str]
    sentence_cache: Path | None = None
    threads: int = 0


def _kokoro(resources: VoiceResources) -> KokoroEngine:
    try:
        files = KokoroFiles(
            model=resources.models[KOKORO_MODEL],
            voices=resources.models[KOKORO_STYLES],
            vocabulary=resources.models[KOKORO_VOCABULARY],
            model_sha256=resources.model_sha256[KOKORO_MODEL],
        )
    except KeyError as exc:
        raise SpeechError(f"the Kokoro model file {exc.args[0]} was not resolved; run scripts/setup") from exc
    return KokoroEngine(files, resources.sentence_cache, resources.threads)


ENGINES: dict[str, Callable[[VoiceResources], TTSEngine]] = {
    "espeak": lambda resources: EspeakEngine(),
    "kokoro": _kokoro,
}
ENGINE_MODELS: dict[str, tuple[str, ...]] = {
    "espeak": (),
    "kokoro": (KOKORO_MODEL, KOKORO_STYLES, KOKORO_VOCABULARY),
}


def models_for(voice: VoiceTemplate) -> tuple[str, ...]:
    """The pinned models (names in config/models.lock.yaml) a voice's engine loads."""
    return ENGINE_MODELS[voice.engine]


def check_voice(voice: VoiceTemplate) -> None:
    """Options that only the engine can judge, checked before any compute (one line otherwise)."""
    if voice.engine == "kokoro":
        names = [voice.style] if isinstance(voice.style, str) else list(voice.style or {})
        unknown = [name for name in names if name not in STYLE_NAMES]
        if unknown:
            raise SpeechError(
                f"voice '{voice.name}': unknown Kokoro style '{unknown[0]}'; available: {', '.join(STYLE_NAMES)}"
            )


def make_engine(voice: VoiceTemplate, resources: VoiceResources) -> TTSEngine:
    return ENGINES[voice.engine](resources)


def describe_voice(voice: VoiceTemplate, model_sha256: dict[str, str]) -> EngineInfo:
    """How the voice is named in the report, the audit entry and the C2PA manifest (no model loaded)."""
    if voice.engine == "kokoro":
        return EngineInfo(
            engine="kokoro",
            version="Kokoro-82M v1.0 (int8 ONNX)",
            model_sha256=model_sha256.get(KOKORO_MODEL),
            license=KOKORO_LICENSE,
            style=style_label(voice.style or ""),
        )
    return EngineInfo(
        engine="espeak-ng",
        version=espeak_session().version(),
        license="GPL-3.0-or-later (espeak-ng)",
        style=voice.espeak_voice,
    )
