"""Post-processing processors: color matcher, upscaler, compositor, labeler, motion smoother.

Each works on the dirty rectangle only (what the reenactor changed), so a 1080p frame costs about
as much as the face region, and memory stays one frame regardless of video length.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from config.processors import ChainRule
from driver_synth.track import CHANNELS
from fusion.processors.base import (
    ChainSetup,
    FrameContext,
    ProcessorSetup,
    ProcessorSpec,
    Rect,
    resize_geometry,
    scale_rect,
    union_rect,
)
from fusion.watermark import WatermarkEmbedder
from vision import topology as topo


class MotionSmoother:
    """One-euro filter on the motion channels: removes jitter (e.g. of a recorded driver) without lag on fast moves."""

    name = "smoother"

    def __init__(self, fps: int, min_cutoff: float = 2.5, beta: float = 0.05) -> None:
        self.fps, self.min_cutoff, self.beta = fps, min_cutoff, beta
        self.state: dict[str, tuple[float, float]] = {}

    def requirements(self) -> list[str]:
        return []

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        self.state = {}
        return base

    def close(self) -> None:
        self.state = {}

    @staticmethod
    def _alpha(cutoff: float, fps: int) -> float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        values = {}
        for name in CHANNELS:
            x = getattr(context.motion, name)
            if name not in self.state:
                self.state[name] = (x, 0.0)
                values[name] = x
                continue
            previous, previous_d = self.state[name]
            d = (x - previous) * self.fps
            a_d = self._alpha(1.0, self.fps)
            d_hat = a_d * d + (1 - a_d) * previous_d
            cutoff = self.min_cutoff + self.beta * abs(d_hat)
            a = self._alpha(cutoff, self.fps)
            filtered = a * x + (1 - a) * previous
            if name == "lip_closure" and x >= 0.99:
                filtered = x  # a closure (P/B/M) must not be softened into a half-open mouth
            self.state[name] = (filtered, d_hat)
            values[name] = filtered
        context.motion = replace(context.motion, **values)
        return frame


class ColorMatcher:
    """Keeps the skin tone of an idle-loop avatar locked to its reference frame (a video's exposure can
    drift): per-channel mean/std transfer measured on a skin patch the mouth and blinks never cover,
    applied through a soft elliptical mask around the face (never a rectangle, so no edge can show),
    and only when the drift is noticeable. A photo avatar's colours cannot drift (the warp only
    moves pixels), so for it this does nothing: measuring a fixed patch of a moving head would read
    motion as colour.

    Why per BGR channel and not in Lab: exposure and white-balance drift are per-channel gains, and a
    per-channel transfer is one lookup table and one weighted blend (~0.4 ms a frame at work size;
    a Lab round trip costs ~1.9 ms)."""

    name = "color_matcher"

    def __init__(self, face_rect: Rect, strength: float = 1.0) -> None:
        self.face_rect, self.strength = face_rect, strength

    def requirements(self) -> list[str]:
        return []

    def _stats(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = self.face_rect
        patch = image[y0:y1:2, x0:x1:2].reshape(-1, 3).astype(np.float32)
        return patch.mean(0), patch.std(0) + 1e-3

    def close(self) -> None:
        self.weight = self.rest = self.output = None

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        self.reference = self._stats(base)
        x0, y0, x1, y1 = self.face_rect
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        radii = (max(x1 - x0, 8) * 0.75, max(y1 - y0, 8) * 1.1)
        height, width = base.shape[:2]
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        distance = np.sqrt(((xs - centre[0]) / radii[0]) ** 2 + ((ys - centre[1]) / radii[1]) ** 2)
        weight = np.clip((1.3 - distance) / 0.7, 0.0, 1.0)
        mask = (weight * weight * (3 - 2 * weight)).astype(np.float32)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        self.mask_rect = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        mx0, my0, mx1, my1 = self.mask_rect
        self.weight = np.ascontiguousarray(mask[my0:my1, mx0:mx1])
        self.rest = 1.0 - self.weight
        self.output: np.ndarray | None = None  # its own buffer: upstream buffers are never written
        self.corrected: Rect | None = None  # where the output holds corrected pixels (last frame)
        return base

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.dirty is None or self.strength <= 0 or not context.stats.get("moving_base"):
            return frame
        mean, std = self._stats(frame)
        ref_mean, ref_std = self.reference
        gain = 1 + self.strength * (np.clip(ref_std / std, 0.9, 1.1) - 1)
        shift = self.strength * (ref_mean - mean)
        context.stats["color_shift"] = float(np.abs(shift).max())
        noticeable = np.abs(shift).max() >= 1.5 or np.abs(gain - 1).max() >= 0.02  # else leave pixels untouched
        # The output equals the input except where it was corrected: refresh what changed upstream
        # and last frame's correction, then correct (the upstream dirty rect need not hold the mask).
        if self.output is None or self.output.shape != frame.shape:
            self.output = frame.copy()
            refresh = (0, 0, frame.shape[1], frame.shape[0])
        else:
            refresh = union_rect(context.dirty, self.corrected)
            rx0, ry0, rx1, ry1 = refresh
            self.output[ry0:ry1, rx0:rx1] = frame[ry0:ry1, rx0:rx1]
        self.corrected = self.mask_rect if noticeable else None
        context.dirty = union_rect(refresh, self.corrected)
        if noticeable:
            self._correct(frame, self.output, mean, gain, shift)
        return self.output

    def _correct(self, frame: np.ndarray, output: np.ndarray, mean, gain, shift) -> None:
        """Per-channel gain about the patch mean plus the shift, through the soft face mask, from
        `frame` into `output`."""
        x0, y0, x1, y1 = self.mask_rect
        levels = np.arange(256, dtype=np.float32)[:, None]
        lut = np.clip((levels - mean) * gain + mean + shift + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)
        region = frame[y0:y1, x0:x1]
        output[y0:y1, x0:x1] = cv2.blendLinear(cv2.LUT(region, lut), region, self.weight, self.rest)


INTERPOLATION = {"cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
SHARPEN_SIGMA_OUTPUT = 1.2  # the unsharp mask's blur, in output pixels


@dataclass(frozen=True)
class UpscalerOptions:
    size: int
    sharpen: float = 0.35
    filter: str = "cubic"


class Upscaler:
    """Upscale + light unsharp mask; the static base is upscaled once, frames only their dirty rect.

    Bicubic by default: OpenCV's Lanczos4 is ~16x slower per frame and, after the unsharp mask,
    indistinguishable on faces at this 1.7x factor (see docs/decisions.md); `lanczos` stays selectable.
    """

    name = "upscaler"

    def __init__(self, options: UpscalerOptions) -> None:
        self.options = options

    def requirements(self) -> list[str]:
        return []

    def _sharpen(self, image: np.ndarray) -> np.ndarray:
        """Unsharp mask at the source resolution, before upscaling: the same look as sharpening the
        upscaled frame with a proportionally wider blur, at a third of the cost."""
        if self.options.sharpen <= 0:
            return image
        sigma = SHARPEN_SIGMA_OUTPUT / max(self.scale, 1.0)
        blurred = cv2.GaussianBlur(image, (0, 0), sigma)
        return cv2.addWeighted(image, 1 + self.options.sharpen, blurred, -self.options.sharpen, 0)

    @property
    def geometry(self) -> tuple[float, float, float]:
        """Where a pixel of the input lands in the output (the engine maps the face landmarks with it)."""
        return resize_geometry(self.scale)

    def close(self) -> None:
        self.base = self.buffer = None

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        self.scale = self.options.size / base.shape[1]
        size = (self.options.size, self.options.size)
        self.interpolation = INTERPOLATION[self.options.filter]
        self.base = cv2.resize(self._sharpen(base), size, interpolation=self.interpolation)
        self.buffer = self.base.copy()
        # A patch whose origin and size are multiples of `step` source pixels maps onto whole output
        # pixels, so resizing it samples exactly where resizing the whole frame does.
        self.step = base.shape[1] // math.gcd(base.shape[1], self.options.size)
        return self.base

    def _aligned(self, rect: Rect, limit: int) -> Rect:
        step, margin = self.step, 6  # margin: the cubic kernel and the sharpening blur reach this far
        x0, y0, x1, y1 = rect
        x0, y0 = max(x0 - margin, 0) // step * step, max(y0 - margin, 0) // step * step
        x1 = min(-(-(x1 + margin) // step) * step, limit)
        y1 = min(-(-(y1 + margin) // step) * step, limit)
        return (x0, y0, x1, y1)

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.dirty is None:
            return self.base
        src = self._aligned(context.dirty, frame.shape[1])
        patch = frame[src[1] : src[3], src[0] : src[2]]
        size = self.options.size
        dx0, dy0 = round(src[0] * self.scale), round(src[1] * self.scale)
        dx1, dy1 = min(round(src[2] * self.scale), size), min(round(src[3] * self.scale), size)
        up = cv2.resize(self._sharpen(patch), (dx1 - dx0, dy1 - dy0), interpolation=self.interpolation)
        inner = scale_rect(context.dirty, self.scale, (size, size))
        ix0, iy0, ix1, iy1 = inner
        self.buffer[iy0:iy1, ix0:ix1] = up[iy0 - dy0 : iy1 - dy0, ix0 - dx0 : ix1 - dx0]
        context.dirty = inner
        return self.buffer


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur with a large sigma, computed at a fraction of the size and scaled back: the
    same soft picture (within a few grey levels) for ~2 % of the cost of blurring 1080p at sigma 40
    (0.3 s, paid by every render while it builds its engine)."""
    factor = max(1, int(sigma // 5))
    if factor == 1:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


BACKDROP_DARKEN = 0.45  # how far the backdrop fades towards the background colour at the frame's edge


def extended_backdrop(base: np.ndarray, width: int, height: int, left: int, top: int,
                      colour: tuple[int, int, int]) -> np.ndarray:  # fmt: skip
    """The soft backdrop beside the portrait: the photo's own edges mirrored outwards and blurred,
    fading towards `colour` only with distance from the portrait.

    Why: the whole photo stretched, blurred and darkened by 45 % everywhere is 40-90 grey levels
    darker than a light photo's edge beside it, and the portrait reads as a pasted square. Mirrored
    edges make both sides of the border the same picture at low frequency; the darkening still
    frames the person towards the frame's sides."""
    side = base.shape[0]
    pads = ((top, height - top - side), (left, width - left - side), (0, 0))
    extended = np.pad(base, [(max(0, a), max(0, b)) for a, b in pads[:2]] + [(0, 0)], mode="symmetric")
    extended = extended[max(0, -top) : max(0, -top) + height, max(0, -left) : max(0, -left) + width]
    blurred = wide_blur(np.ascontiguousarray(extended), 40).astype(np.float32)
    columns = np.arange(width, dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)
    outside_x = np.maximum(np.maximum(left - columns, columns - (left + side - 1)), 0) / max(1, left)
    outside_y = np.maximum(np.maximum(top - rows, rows - (top + side - 1)), 0) / max(1, top, left)
    distance = np.clip(np.maximum(outside_x[None, :], outside_y[:, None]), 0, 1)
    weight = (BACKDROP_DARKEN * distance * distance * (3 - 2 * distance))[..., None]  # smoothstep
    canvas = blurred * (1 - weight) + np.asarray(colour, np.float32) * weight
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class CompositorOptions:
    width: int
    height: int
    background: str = "blur"
    background_color: tuple[int, int, int] = (38, 42, 48)


class Compositor:
    """Places the square portrait in the centre of the output frame over a soft background."""

    name = "compositor"

    def __init__(self, options: CompositorOptions) -> None:
        self.options = options

    def requirements(self) -> list[str]:
        return []

    @property
    def geometry(self) -> tuple[float, float, float]:
        return (1.0, float(self.left), float(self.top))

    def close(self) -> None:
        self.base = self.buffer = None

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        width, height = self.options.width, self.options.height
        side = base.shape[0]
        self.left, self.top = (width - side) // 2, (height - side) // 2
        if self.options.background == "blur":
            canvas = extended_backdrop(base, width, height, self.left, self.top, self.options.background_color)
        else:
            canvas = np.full((height, width, 3), self.options.background_color, np.uint8)
        self.side = side
        canvas[self.top : self.top + side, self.left : self.left + side] = base
        # The portrait's left/right edges fade into the (blurred) background over `feather` pixels.
        self.feather = max(8, side // 40)
        ramp = np.repeat(np.linspace(0, 1, self.feather, dtype=np.float32)[None, :], side, axis=0)
        self.band_weights = (ramp, np.ascontiguousarray(ramp[:, ::-1]))  # portrait's weight, left and right
        self.band_rests = tuple(1.0 - weights for weights in self.band_weights)
        rows = slice(self.top, self.top + side)
        blurred = wide_blur(canvas, 20)
        self.band_backgrounds = (
            blurred[rows, self.left : self.left + self.feather].copy(),
            blurred[rows, self.left + side - self.feather : self.left + side].copy(),
        )
        self._feather(canvas)
        self.base = canvas
        self.buffer = canvas.copy()
        return canvas

    def _feather(self, canvas: np.ndarray, rect: Rect | None = None) -> None:
        """Fade the freshly written part `rect` (portrait coordinates; default all of it) of the
        portrait's edge bands into the background. Only fresh pixels: blending twice would darken."""
        x0, y0, x1, y1 = rect or (0, 0, self.side, self.side)
        starts = (0, self.side - self.feather)
        for start, weights, rests, background in zip(starts, self.band_weights, self.band_rests,
                                                     self.band_backgrounds, strict=True):  # fmt: skip
            c0, c1 = max(x0, start), min(x1, start + self.feather)
            if c0 >= c1 or y0 >= y1:
                continue
            band = (slice(y0, y1), slice(c0 - start, c1 - start))
            rows, columns = slice(self.top + y0, self.top + y1), slice(self.left + c0, self.left + c1)
            canvas[rows, columns] = cv2.blendLinear(
                canvas[rows, columns], background[band], np.ascontiguousarray(weights[band]),
                np.ascontiguousarray(rests[band]),
            )  # fmt: skip

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.dirty is None:
            return self.buffer
        x0, y0, x1, y1 = context.dirty
        self.buffer[self.top + y0 : self.top + y1, self.left + x0 : self.left + x1] = frame[y0:y1, x0:x1]
        self._feather(self.buffer, (x0, y0, x1, y1))  # no-op unless the rect reaches the edges (idle loops)
        context.dirty = (self.left + x0, self.top + y0, self.left + x1, self.top + y1)
        return self.buffer


@dataclass(frozen=True)
class LabelOptions:
    text: str
    font_path: Path
    height_ratio: float = 0.036
    margin_ratio: float = 0.05
    opacity: float = 0.85


def find_font(candidates: tuple[str, ...]) -> Path | None:
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


class Labeler:
    """Burns the visible "AI生成 / AI-generated" label into every frame (top-right, on a dark plate)."""

    name = "labeler"

    def __init__(self, options: LabelOptions) -> None:
        self.options = options

    def requirements(self) -> list[str]:
        return []

    def render_label(self, frame_height: int) -> tuple[np.ndarray, np.ndarray]:
        """BGR pixels and alpha of the label plate (rendered with a CJK-capable font); `frame_height`
        is the frame's short side (its height in landscape)."""
        size = max(12, int(frame_height * self.options.height_ratio))
        font = ImageFont.truetype(str(self.options.font_path), size)
        left, top, right, bottom = font.getbbox(self.options.text)
        pad = size // 2
        width, height = right - left + 2 * pad, bottom - top + 2 * pad
        plate = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(plate)
        draw.rounded_rectangle(
            (0, 0, width - 1, height - 1), radius=pad, fill=(0, 0, 0, int(150 * self.options.opacity))
        )
        draw.text(
            (pad - left, pad - top), self.options.text, font=font, fill=(255, 255, 255, int(255 * self.options.opacity))
        )
        rgba = np.asarray(plate).astype(np.float32)
        return rgba[..., 2::-1].copy(), rgba[..., 3:] / 255.0

    def close(self) -> None:
        self.under = None
        self.primed = False

    def layout(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray, Rect]:
        """The label's pixels, alpha and rectangle in a frame of this size. Sized by the frame's short
        side, so it is the same label in 1920×1080, 1080×1920 and 1080×1080 (and unchanged at 16:9)."""
        short = min(width, height)
        pixels, alpha = self.render_label(short)
        margin = int(short * self.options.margin_ratio)
        h, w = alpha.shape[:2]
        return pixels, alpha, (width - margin - w, margin, width - margin, margin + h)

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        height, width = base.shape[:2]
        self.pixels, self.alpha, self.rect = self.layout(width, height)
        self.primed = False  # no frame labeled yet: the first one is labeled all over
        self.under: np.ndarray | None = None  # the unlabeled pixels under the label
        return self._apply(base.copy(), None)

    def _apply(self, frame: np.ndarray, dirty: Rect | None) -> np.ndarray:
        """Blend the label over the unlabeled pixels. Upstream stages reuse one buffer and rewrite only
        their dirty rect, so inside the label only that part is fresh; the rest is restored from the
        saved unlabeled pixels first: the label is never blended twice over itself."""
        x0, y0, x1, y1 = self.rect
        region = frame[y0:y1, x0:x1]
        if dirty is None or self.under is None:
            self.under = region.copy()
        else:
            fx0, fy0 = max(dirty[0], x0) - x0, max(dirty[1], y0) - y0
            fx1, fy1 = min(dirty[2], x1) - x0, min(dirty[3], y1) - y0
            self.under[fy0:fy1, fx0:fx1] = region[fy0:fy1, fx0:fx1]
        blended = self.under.astype(np.float32) * (1 - self.alpha) + self.pixels * self.alpha
        frame[y0:y1, x0:x1] = blended.astype(np.uint8)
        return frame

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if not self.primed or context.dirty is None:  # the first frame, or an unknown change
            self.primed = True
            return self._apply(frame, None)
        if context.dirty is not None and _overlaps(context.dirty, self.rect):
            return self._apply(frame, context.dirty)
        return frame


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class Watermarker:
    """The invisible watermark (fusion/watermark.py) on every finished frame; last in the chain.

    Upstream stages reuse one buffer and rewrite only their dirty rect, so the watermark is added into
    its own output buffer, and only over the dirty rect once that buffer holds a watermarked frame."""

    name = "watermarker"

    def __init__(self, payload: int, strength: float) -> None:
        self.payload = payload
        self.strength = strength
        self.embedder: WatermarkEmbedder | None = None
        self.output: np.ndarray | None = None
        self.seconds = 0.0  # time spent watermarking (the cost of this mark, reported per render)

    def requirements(self) -> list[str]:
        return []

    def close(self) -> None:
        self.output = None

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        height, width = base.shape[:2]
        self.output = None
        self.embedder = WatermarkEmbedder(width, height, self.payload, self.strength)
        still = np.empty_like(base)
        return self.embedder.apply(base, still)

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        start = time.perf_counter()
        if self.output is None or self.output.shape != frame.shape or context.dirty is None:
            if self.output is None or self.output.shape != frame.shape:
                self.output = np.empty_like(frame)
            rect = None  # the first frame (or an unknown change): watermark all of it
        else:
            rect = _clip_rect(context.dirty, frame.shape)
        result = self.embedder.apply(frame, self.output, rect)
        self.seconds += time.perf_counter() - start
        return result


def _clip_rect(rect: Rect, shape: tuple[int, ...]) -> Rect:
    height, width = shape[:2]
    return (max(0, rect[0]), max(0, rect[1]), min(width, rect[2]), min(height, rect[3]))


def skin_reference_rect(landmarks: np.ndarray, shape: tuple[int, ...]) -> Rect:
    """Cheeks and nose between the eyes and the upper lip: skin that the mouth and blinks never cover."""
    x0 = landmarks[topo.RIGHT_EYE_OUTER, 0]
    x1 = landmarks[topo.LEFT_EYE_OUTER, 0]
    y0 = landmarks[list(topo.RIGHT_EYE_LOWER + topo.LEFT_EYE_LOWER), 1].max() + 2
    y1 = landmarks[list(topo.LIPS_OUTER_UPPER), 1].min() - 2
    height, width = shape[:2]
    return (int(max(x0, 0)), int(max(y0, 0)), int(min(x1, width)), int(min(max(y1, y0 + 4), height)))


def _color_matcher(setup: ChainSetup, options: None) -> ColorMatcher:
    rect = skin_reference_rect(setup.work_landmarks, setup.work_image.shape)
    return ColorMatcher(rect, setup.post.color_match_strength)


def _upscaler(setup: ChainSetup, options: None) -> Upscaler:
    post = setup.post
    return Upscaler(UpscalerOptions(size=setup.portrait, sharpen=post.sharpen_amount, filter=post.upscale_filter))


COLOR_MATCHER = ProcessorSpec("color_matcher", create=_color_matcher)
UPSCALER = ProcessorSpec("upscaler", create=_upscaler, rule=ChainRule(one_of="sizer", why="it sizes the portrait"))
