"""The models a configured chain runs and what each model file must look like, before any compute.

Why apart from the engine: request validation, `dhf models add` and the engine all need to know
which models a configured chain runs and what each model file must look like; only the engine
needs the processors themselves. The formats come from the registered processors' model tables
(fusion/processors/registry.py), so a new processor's models are known here without a line here.
"""

from __future__ import annotations

from fusion.processors.registry import model_formats, required_models
from vision.errors import ModelError
from vision.models import ModelFormat, ModelRegistry

__all__ = ["MODEL_FORMATS", "check_placed", "model_format", "required_models"]

MODEL_FORMATS: dict[str, ModelFormat] = model_formats()  # the registered processors' formats, by model name


def model_format(name: str) -> ModelFormat:
    formats = model_formats()
    if name not in formats:
        raise ModelError(f"no processor runs a model called '{name}'; known: {', '.join(sorted(formats))}")
    return formats[name]


def check_placed(registry: ModelRegistry, names: list[str]) -> None:
    """Every model of the chain placed and intact; one line naming the file and how to place it."""
    for name in names:
        fmt = model_format(name)
        if name not in registry.specs:
            raise ModelError(
                f"model '{name}' ({fmt.filename}) is not placed in {registry.model_dir}; download it by hand "
                f"from {fmt.source} and run `dhf models add {fmt.filename} --as {name}` (README: Neural processors)"
            )
        registry.path(name)  # missing file or sha256 mismatch: its own one-line error
