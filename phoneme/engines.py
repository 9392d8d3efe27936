"""The registry of TTS engines: which engine speaks a voice template, what it needs, what it is.

Why discovery by file name: a voice's `engine:` (config/voices.yaml) names a module
`phoneme/<engine>_engine.py` whose `ENGINE` (phoneme.tts.EngineSpec) says everything about it, so an
engine is added by adding its module, and nothing here lists engines. A module is imported only when a
voice uses its engine (Kokoro's onnxruntime is never loaded for an espeak-ng render).
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import phoneme
from config import VoiceTemplate
from phoneme.errors import SpeechError
from phoneme.tts import EngineInfo, EngineSpec, TTSEngine, VoiceResources

__all__ = ["VoiceResources", "available_engines", "check_voice", "describe_voice", "engine_spec", "make_engine"]

MODULE_SUFFIX = "_engine"
_ENGINE_NAME = re.compile(r"^[a-z][a-z0-9]*$")


def available_engines() -> tuple[str, ...]:
    """Engine names, one per `phoneme/<name>_engine.py` module, sorted."""
    modules = (info.name for info in pkgutil.iter_modules(phoneme.__path__) if info.name.endswith(MODULE_SUFFIX))
    return tuple(sorted(n for n in (m.removesuffix(MODULE_SUFFIX) for m in modules) if _ENGINE_NAME.match(n)))


def engine_spec(name: str) -> EngineSpec:
    """The engine called `name`; an unknown name is refused with the list of engines."""
    if not _ENGINE_NAME.match(name) or name not in available_engines():
        raise SpeechError(f"unknown TTS engine '{name}'; available: {', '.join(available_engines())}")
    spec = getattr(importlib.import_module(f"phoneme.{name}{MODULE_SUFFIX}"), "ENGINE", None)
    if not isinstance(spec, EngineSpec) or spec.name != name:
        raise SpeechError(f"phoneme/{name}{MODULE_SUFFIX}.py has no ENGINE = EngineSpec(name='{name}', ...)")
    return spec


def models_for(voice: VoiceTemplate) -> tuple[str, ...]:
    """The pinned models (names in config/models.lock.yaml) a voice's engine loads."""
    return engine_spec(voice.engine).models


def check_voice(voice: VoiceTemplate) -> None:
    """Options that only the engine can judge, checked before any compute (one line otherwise)."""
    engine_spec(voice.engine).check(voice)


def make_engine(voice: VoiceTemplate, resources: VoiceResources) -> TTSEngine:
    return engine_spec(voice.engine).create(resources)


def describe_voice(voice: VoiceTemplate, model_sha256: dict[str, str]) -> EngineInfo:
    """How the voice is named in the report, the audit entry and the C2PA manifest (no model loaded)."""
    return engine_spec(voice.engine).describe(voice, model_sha256)
