"""The neural processors and the model formats they run: what a chain requires, before any compute.

Why a catalog apart from the engine: request validation, `dhf models add` and the engine all need to
know which models a configured chain runs and what each model file must look like, and only the
engine needs the processors themselves.
"""

from __future__ import annotations

from config.settings import FusionSettings
from fusion.processors import face_enhancer, face_swapper, frame_enhancer, lip_syncer
from vision.errors import ModelError
from vision.models import ModelFormat, ModelRegistry

MODEL_FORMATS: dict[str, ModelFormat] = {
    **face_swapper.MODELS,
    **lip_syncer.MODELS,
    **face_enhancer.MODELS,
    **frame_enhancer.MODELS,
}


def required_models(fusion: FusionSettings) -> list[str]:
    """Registry names of the models the configured chain runs, in chain order."""
    needed: list[str] = []
    for name in fusion.processors:
        if name == "face_swapper":
            needed += [fusion.face_swapper.model, fusion.face_swapper.embedder]
        elif name == "lip_syncer":
            needed.append(fusion.lip_syncer.model)
        elif name == "face_enhancer":
            needed.append(fusion.face_enhancer.model)
        elif name == "frame_enhancer":
            needed.append(fusion.frame_enhancer.model)
    return needed


def model_format(name: str) -> ModelFormat:
    if name not in MODEL_FORMATS:
        raise ModelError(f"no processor runs a model called '{name}'; known: {', '.join(sorted(MODEL_FORMATS))}")
    return MODEL_FORMATS[name]


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
