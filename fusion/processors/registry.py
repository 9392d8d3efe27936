"""The engine's side of the processor registry (config/processors.py names the processors): a listed
processor's spec, the processor built from it, and what the configured chain needs (models, speech).

Why here and not in the engine: request validation and `dhf models` ask what a chain needs before any
compute, without building it; the engine asks the same registry to build it.
"""

from __future__ import annotations

from config import processors as registered
from config.settings import FusionSettings
from fusion.errors import FusionError
from fusion.processors.base import ChainSetup, Processor, ProcessorSpec
from vision.models import ModelFormat


def spec(name: str) -> ProcessorSpec:
    """The registered processor `name`; FusionError for a name the registry does not hold (settings
    validation refuses those first, so this only fires when validation was bypassed)."""
    if name not in registered.REGISTRY:
        raise FusionError(f"unknown processor '{name}' in fusion.processors; see README: Neural processors")
    return registered.spec(name)  # type: ignore[return-value]


def names() -> tuple[str, ...]:
    return tuple(registered.REGISTRY)


def create(name: str, setup: ChainSetup, fusion: FusionSettings) -> Processor:
    """The listed processor `name`, built from the chain's setup and its own settings section."""
    return spec(name).create(setup, fusion.options(name))


def model_formats() -> dict[str, ModelFormat]:
    """Every model format a registered processor can run, by registry name."""
    return {model: fmt for name in names() for model, fmt in spec(name).models.items()}


def required_models(fusion: FusionSettings) -> list[str]:
    """Registry names of the models the configured chain runs, in chain order."""
    return [model for name in fusion.processors for model in spec(name).requires(fusion.options(name))]


def replaces_mouth(processors: tuple[str, ...] | list[str]) -> bool:
    """Whether a listed processor covers the mouth with recorded footage (the reenactor then paints none)."""
    return any(spec(name).replaces_mouth for name in processors)


def speech_rate(fusion: FusionSettings) -> int | None:
    """The sample rate at which a listed processor hears the speech (None: none of them listens)."""
    rates = [spec(name).speech_rate for name in fusion.processors if spec(name).speech_rate is not None]
    return rates[0] if rates else None
