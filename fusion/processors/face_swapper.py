"""Identity swap in the inswapper-128 ONNX format (FaceFusion's face_swapper, the seed system's engine).

Two models. The avatar's identity is embedded once by an ArcFace model in the w600k format: a
112×112 crop aligned on ArcFace's 5-point template, RGB scaled to [-1, 1] ((x − 127.5)/127.5), NCHW
float32 in `input`, a 512-d embedding out. inswapper does not take that embedding as it is: it
takes `embedding · emap / ‖embedding‖`, where `emap` (512×512) is stored as the last initializer
of the inswapper graph itself. Per frame the face is aligned on ArcFace's template at 128×128 (x
shifted by 8 px, insightface's convention), RGB in [0, 1] as `target`, the latent as `source`; the
swapped crop (RGB in [0, 1]) is pasted back with a feathered mask.

What it is for: a recorded actor's performance shown as the licensed avatar. The identity comes
only from the avatar the licence covers; there is no option to take it from anywhere else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from config.settings import Fraction, Section
from fusion.errors import FusionError
from fusion.processors.base import FrameContext, ProcessorSetup, ProcessorSpec
from fusion.processors.face_geometry import OutputBuffer, align, feather_mask, paste, warp_crop
from vision.errors import ModelError
from vision.models import FACEFUSION_ASSETS, ModelFormat, TensorSpec

EMBEDDING = 512
_INSIGHTFACE = "Non-commercial research only (InsightFace)"

SWAPPERS = {
    "inswapper_128": ModelFormat(
        "inswapper_128", "inswapper_128.onnx", _INSIGHTFACE, False, FACEFUSION_ASSETS + "inswapper_128.onnx",
        (TensorSpec("target", (None, 3, 128, 128)), TensorSpec("source", (None, EMBEDDING))),
        (TensorSpec(None, (None, 3, 128, 128)),),
        extra=(("template", "arcface_128"), ("size", 128)),
    ),
}  # fmt: skip
EMBEDDERS = {
    "arcface_w600k_r50": ModelFormat(
        "arcface_w600k_r50", "arcface_w600k_r50.onnx", _INSIGHTFACE, False,
        FACEFUSION_ASSETS + "arcface_w600k_r50.onnx",
        (TensorSpec("input", (None, 3, 112, 112)),), (TensorSpec(None, (None, EMBEDDING)),),
        extra=(("template", "arcface_112"), ("size", 112)),
    ),
}  # fmt: skip
MODELS = {**SWAPPERS, **EMBEDDERS}


class FaceSwapperOptions(Section):
    """`fusion.face_swapper`: inswapper-128-format identity swap onto the licensed avatar (its ArcFace embedding)."""

    model: str = "inswapper_128"
    embedder: str = "arcface_w600k_r50"  # the ArcFace model that embeds the avatar's identity
    blend: Fraction = 1.0
    mask_feather: Fraction = 0.15


def embedding_input(crop_bgr: np.ndarray) -> np.ndarray:
    """ArcFace's input: RGB in [-1, 1], NCHW float32."""
    return ((crop_bgr[..., ::-1].astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]


def read_emap(path: Path) -> np.ndarray:
    """inswapper's embedding map: the graph's last initializer, a 512×512 matrix."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # the `setup` extra brings it; scripts/setup installs it
        raise ModelError("face_swapper needs the onnx package to read inswapper's emap; pip install onnx") from exc
    graph = onnx.load(str(path)).graph
    if not graph.initializer:
        raise ModelError(f"{path.name} has no initializers, so no emap; this is not an inswapper model")
    emap = numpy_helper.to_array(graph.initializer[-1])
    if emap.shape != (EMBEDDING, EMBEDDING):
        raise ModelError(f"{path.name}: its last initializer is {emap.shape}, not inswapper's 512×512 emap")
    return emap.astype(np.float32)


def swapper_latent(embedding: np.ndarray, emap: np.ndarray) -> np.ndarray:
    """What inswapper's `source` takes: the embedding through emap, divided by the embedding's norm."""
    flat = np.asarray(embedding, np.float32).reshape(1, -1)
    return (flat @ emap / np.linalg.norm(flat)).astype(np.float32)


def to_model(crop_bgr: np.ndarray) -> np.ndarray:
    return (crop_bgr[..., ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def from_model(output: np.ndarray) -> np.ndarray:
    return np.round(np.clip(output[0], 0.0, 1.0).transpose(1, 2, 0) * 255.0)[..., ::-1].astype(np.uint8)


class FaceSwapper:
    """`Processor`: every frame's face given the licensed avatar's identity."""

    name = "face_swapper"
    needs_landmarks = True

    def __init__(self, options: FaceSwapperOptions) -> None:
        if options.model not in SWAPPERS:
            raise FusionError(f"unknown face_swapper model '{options.model}'; known: {', '.join(SWAPPERS)}")
        if options.embedder not in EMBEDDERS:
            raise FusionError(f"unknown face_swapper embedder '{options.embedder}'; known: {', '.join(EMBEDDERS)}")
        self.options = options
        self.format = SWAPPERS[options.model]
        self.session = None
        self.output = OutputBuffer()

    def requirements(self) -> list[str]:
        return [self.options.model, self.options.embedder]

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        if setup is None:
            raise FusionError("face_swapper needs a ProcessorSetup (models and the avatar)")
        embedder_format = EMBEDDERS[self.options.embedder]
        embedder = setup.session(self.options.embedder)
        size = int(embedder_format.fact("size"))
        matrix = align(setup.avatar_landmarks, str(embedder_format.fact("template")), size)
        crop = warp_crop(setup.avatar_image, matrix, (size, size))
        self.embedding = embedder.run(None, {embedder.get_inputs()[0].name: embedding_input(crop)})[0].reshape(-1)
        self.latent = swapper_latent(self.embedding, read_emap(setup.model_path(self.options.model)))
        self.session = setup.session(self.options.model)
        self.size = int(self.format.fact("size"))
        self.template = str(self.format.fact("template"))
        self.mask = feather_mask((self.size, self.size), self.options.mask_feather)
        still = base.copy()
        if setup.base_landmarks is not None:
            self.swap(base, still, setup.base_landmarks)
        return still

    def swap(self, frame: np.ndarray, out: np.ndarray, landmarks: np.ndarray):
        matrix = align(landmarks, self.template, self.size)
        crop = warp_crop(frame, matrix, (self.size, self.size))
        swapped = from_model(self.session.run(None, {"target": to_model(crop), "source": self.latent})[0])
        return paste(frame, out, swapped, self.mask, matrix, self.options.blend)

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.landmarks is None:
            return frame
        refreshed = self.output.refresh(frame, context.dirty)
        pasted = self.swap(frame, self.output.array, context.landmarks)
        context.dirty = self.output.done(pasted, refreshed)
        return self.output.array

    def close(self) -> None:
        self.session = None
        self.output = OutputBuffer()


PROCESSOR = ProcessorSpec(
    "face_swapper",
    create=lambda setup, options: FaceSwapper(options),
    options=FaceSwapperOptions,
    models=MODELS,
    requires=lambda options: [options.model, options.embedder],
)
