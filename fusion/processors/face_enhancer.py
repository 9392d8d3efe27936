"""Face restoration in the GFPGAN 1.4 / GPEN-BFR 512 / CodeFormer ONNX formats (FaceFusion's face_enhancer).

The format: a 512×512 crop aligned on the FFHQ 5-point template, RGB, scaled to [-1, 1]
((x/255 − 0.5)/0.5), NCHW float32 in `input`; the restored crop comes out in the same range in
`output`. CodeFormer adds `weight` (float64, shape [1]): its fidelity, 0 = most restoration. The
restored crop is pasted back through the inverse alignment with a feathered mask and blended with
the frame by `blend`, because a fully restored face looks airbrushed next to the untouched hair.
"""

from __future__ import annotations

import numpy as np

from config.settings import Fraction, Section
from fusion.errors import FusionError
from fusion.processors.base import FrameContext, ProcessorSetup, ProcessorSpec
from fusion.processors.face_geometry import OutputBuffer, align, feather_mask, paste, warp_crop
from vision.models import FACEFUSION_ASSETS, ModelFormat, TensorSpec

_CROP = (TensorSpec("input", (None, 3, 512, 512)),)
_OUT = (TensorSpec(None, (None, 3, 512, 512)),)
_FACTS = (("template", "ffhq_512"), ("size", 512))

MODELS = {
    fmt.name: fmt
    for fmt in (
        ModelFormat("gfpgan_1.4", "gfpgan_1.4.onnx", "Apache-2.0 (TencentARC GFPGAN)", True,
                    FACEFUSION_ASSETS + "gfpgan_1.4.onnx", _CROP, _OUT, extra=_FACTS),
        ModelFormat("gpen_bfr_512", "gpen_bfr_512.onnx", "Non-commercial (GPEN, yangxy)", False,
                    FACEFUSION_ASSETS + "gpen_bfr_512.onnx", _CROP, _OUT, extra=_FACTS),
        ModelFormat("codeformer", "codeformer.onnx", "S-Lab License 1.0, non-commercial (CodeFormer, sczhou)", False,
                    FACEFUSION_ASSETS + "codeformer.onnx",
                    (*_CROP, TensorSpec("weight", (1,), ("float64",))), _OUT, extra=_FACTS),
    )
}  # fmt: skip


class FaceEnhancerOptions(Section):
    """`fusion.face_enhancer`: GFPGAN / GPEN-BFR / CodeFormer-format face restoration (README: Neural processors)."""

    model: str = "gfpgan_1.4"
    blend: Fraction = 0.8  # share of the restored face in the result
    weight: Fraction = 0.5  # CodeFormer's fidelity input (models without a `weight` input ignore it)
    mask_feather: Fraction = 0.15  # feathered edge of the pasted crop, as a share of its side


def to_model(crop_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 crop → the format's input: RGB in [-1, 1], NCHW float32."""
    rgb = crop_bgr[..., ::-1].astype(np.float32) / 255.0
    return ((rgb - 0.5) / 0.5).transpose(2, 0, 1)[None]


def from_model(output: np.ndarray) -> np.ndarray:
    """The format's output (1, 3, H, W) in [-1, 1], RGB → BGR uint8."""
    rgb = (np.clip(output[0], -1.0, 1.0) + 1.0) / 2.0
    return np.round(rgb.transpose(1, 2, 0) * 255.0)[..., ::-1].astype(np.uint8)


class FaceEnhancer:
    """`Processor`: restores the face in every frame (and in the still)."""

    name = "face_enhancer"
    needs_landmarks = True

    def __init__(self, options: FaceEnhancerOptions) -> None:
        if options.model not in MODELS:
            raise FusionError(f"unknown face_enhancer model '{options.model}'; known: {', '.join(MODELS)}")
        self.options = options
        self.format = MODELS[options.model]
        self.session = None
        self.output = OutputBuffer()

    def requirements(self) -> list[str]:
        return [self.options.model]

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        if setup is None:
            raise FusionError("face_enhancer needs a ProcessorSetup (models and the avatar)")
        self.session = setup.session(self.options.model)
        self.size = int(self.format.fact("size"))
        self.template = str(self.format.fact("template"))
        self.has_weight = any(i.name == "weight" for i in self.session.get_inputs())
        self.mask = feather_mask((self.size, self.size), self.options.mask_feather)
        still = base.copy()
        if setup.base_landmarks is not None:
            self.enhance(base, still, setup.base_landmarks)
        return still

    def enhance(self, frame: np.ndarray, out: np.ndarray, landmarks: np.ndarray):
        """Restore the face of `frame` (landmarks in its pixels) into `out`; returns the pasted rect."""
        matrix = align(landmarks, self.template, self.size)
        crop = warp_crop(frame, matrix, (self.size, self.size))
        feed = {"input": to_model(crop)}
        if self.has_weight:
            feed["weight"] = np.array([self.options.weight], np.float64)
        restored = from_model(self.session.run(None, feed)[0])
        return paste(frame, out, restored, self.mask, matrix, self.options.blend)

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.landmarks is None:
            return frame  # no face tracked in this frame: nothing to restore
        refreshed = self.output.refresh(frame, context.dirty)
        pasted = self.enhance(frame, self.output.array, context.landmarks)
        context.dirty = self.output.done(pasted, refreshed)
        return self.output.array

    def close(self) -> None:
        self.session = None
        self.output = OutputBuffer()


PROCESSOR = ProcessorSpec(
    "face_enhancer",
    create=lambda setup, options: FaceEnhancer(options),
    options=FaceEnhancerOptions,
    models=MODELS,
    requires=lambda options: [options.model],
)
