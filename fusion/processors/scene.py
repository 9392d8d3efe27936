"""The scene's two stages: the compositor that puts the person on the branded canvas, and the overlay
that lays the logo, the name tag and the burnt-in captions over it (before the label and watermark).

Static parts are composed once per video (`prepare`): the background, the person at rest, the logo
and the name tag. Per frame only the dirty rectangle (the head and what moved with it) is blended
again, and the caption box only when its cue changes, so a branded 9:16 frame costs about what a
plain 16:9 one does (scripts/bench_scenes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from config import LabelSettings
from config.processors import ChainRule
from config.settings import SceneTemplate
from fusion.burned_captions import BurnedCue, render_caption, render_name_tag
from fusion.processors.base import ChainSetup, FrameContext, Processor, ProcessorSetup, ProcessorSpec, Rect
from fusion.processors.post import Compositor, CompositorOptions
from fusion.processors.scene_body import continue_body
from fusion.processors.scene_layout import SceneLayout, blurred_canvas, check_label_contrast, label_font, read_asset

MOTION_ROOM = 0.05  # × the work size: the cut-out is widened by this, so a turning head keeps its hair
MIN_RECT = 2  # an otherwise empty dirty rect is this small square (downstream stages need a rect)


def _intersect(a: Rect, b: Rect) -> Rect | None:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _union(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


@dataclass(frozen=True)
class SceneCompositorOptions:
    name: str
    template: SceneTemplate
    layout: SceneLayout
    label: LabelSettings
    background: np.ndarray | None = None  # the painted canvas (None: `blur`, painted from the portrait)
    person: np.ndarray | None = None  # the person mask at work size (255 = person); None: no cut-out


class SceneCompositor:
    """Places the person square on the scene's canvas: cut out over a solid or image background (the
    backdrop was already replaced in the work image, so the head can move over it), or feathered over
    the blurred photo. Registered as the chain's `compositor` when a scene is in use."""

    name = "compositor"

    def __init__(self, options: SceneCompositorOptions) -> None:
        self.options = options
        layout = options.layout
        self.left, self.top = layout.square[0], layout.square[1]

    def requirements(self) -> list[str]:
        return []

    @property
    def geometry(self) -> tuple[float, float, float]:
        return (1.0, float(self.left), float(self.top))

    def close(self) -> None:
        self.buffer = self.background = self.weight = self.rest = None

    def _alpha(self, side: int) -> np.ndarray:
        """Where the portrait shows, at portrait size: the person widened by some room for head motion,
        softly edged; without a cut-out the whole square with feathered edges. Either way the square's
        edges inside the canvas fade out: a cut-out person that reaches the photo's edge (the shoulders
        of a bust) would otherwise stop in a hard straight line on the scene's background."""
        person = self.options.person
        edges = self._edge_fade(side)
        if person is not None:  # `blur` too when it has a cut-out (its canvas then has no person)
            room = max(1, round(MOTION_ROOM * person.shape[0]))
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * room + 1, 2 * room + 1))
            grown = cv2.dilate((person > 127).astype(np.uint8), disc)
            soft = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), room / 2)
            return np.clip(cv2.resize(soft, (side, side), interpolation=cv2.INTER_LINEAR), 0.0, 1.0) * edges
        return edges

    @staticmethod
    def _feather(side: int) -> int:
        return max(8, side // 12)  # wide: the photo's own backdrop fades into its blurred copy

    def _edge_fade(self, side: int) -> np.ndarray:
        """1 inside, ramping to 0 over side/12 at each square edge that lies inside the canvas (edges on
        the canvas border are cut by the frame anyway: a bust standing on the bottom edge stays whole)."""
        feather = self._feather(side)
        ramp = np.clip((np.arange(side, dtype=np.float32) + 0.5) / feather, 0.0, 1.0)
        edge = np.minimum(ramp, ramp[::-1])
        layout = self.options.layout
        horizontal, vertical = edge.copy(), edge.copy()
        if self.left <= 0:
            horizontal[: side // 2] = 1.0
        if self.left + side >= layout.width:
            horizontal[side // 2 :] = 1.0
        if self.top + side >= layout.height:
            vertical[side // 2 :] = 1.0
        if self.top <= 0:
            vertical[: side // 2] = 1.0
        return np.outer(vertical, horizontal).astype(np.float32)

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        layout, template = self.options.layout, self.options.template
        side = base.shape[0]
        if self.options.background is not None:
            canvas = self.options.background
        else:
            canvas = blurred_canvas(template.background, layout.width, layout.height, base)  # only `blur` has none
        person = self.options.person
        if person is not None and template.person.continue_body:  # shoulders continue past a photo edge
            matte = cv2.resize(person.astype(np.float32) / 255, (side, side), interpolation=cv2.INTER_LINEAR)
            canvas = continue_body(canvas, base, matte, self.left, self.top, self._feather(side))
        self.background = np.ascontiguousarray(canvas)
        square = (self.left, self.top, self.left + side, self.top + side)
        self.visible = _intersect(square, (0, 0, layout.width, layout.height))
        if self.visible is None:
            raise ValueError("the person square is outside the canvas")  # layout_scene prevents this
        alpha = self._alpha(side)
        x0, y0, x1, y1 = self.visible
        self.weight = np.ascontiguousarray(alpha[y0 - self.top : y1 - self.top, x0 - self.left : x1 - self.left])
        self.rest = 1.0 - self.weight
        self.buffer = self.background.copy()
        self._blend(base, self.visible)
        check_label_contrast(f"scene '{self.options.name}'", self.buffer, layout.label, self.options.label)
        return self.buffer.copy()

    def _blend(self, portrait: np.ndarray, rect: Rect) -> None:
        """Blend the portrait over the background inside `rect` (canvas coordinates, inside `visible`)."""
        x0, y0, x1, y1 = rect
        vx, vy = self.visible[0], self.visible[1]
        weights = (slice(y0 - vy, y1 - vy), slice(x0 - vx, x1 - vx))
        source = portrait[y0 - self.top : y1 - self.top, x0 - self.left : x1 - self.left]
        self.buffer[y0:y1, x0:x1] = cv2.blendLinear(
            source, self.background[y0:y1, x0:x1], self.weight[weights], self.rest[weights]
        )

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.dirty is None:
            return self.buffer
        x0, y0, x1, y1 = context.dirty
        rect = _intersect((self.left + x0, self.top + y0, self.left + x1, self.top + y1), self.visible)
        if rect is None:  # what changed is outside the canvas (a shoulder past its edge)
            vx, vy = self.visible[:2]
            context.dirty = (vx, vy, vx + MIN_RECT, vy + MIN_RECT)
            return self.buffer
        self._blend(frame, rect)
        context.dirty = rect
        return self.buffer


@dataclass
class Layer:
    """Pixels and alpha over `rect` of the canvas (premultiplied once)."""

    rect: Rect
    premultiplied: np.ndarray
    keep: np.ndarray  # 1 − alpha

    @classmethod
    def of(cls, pixels: np.ndarray, alpha: np.ndarray, at: tuple[int, int]) -> Layer:
        h, w = alpha.shape[:2]
        rect = (at[0], at[1], at[0] + w, at[1] + h)
        return cls(rect, (pixels * alpha).astype(np.float32), (1.0 - alpha).astype(np.float32))

    def blend_into(self, frame: np.ndarray, under: np.ndarray, rect: Rect) -> None:
        """frame[rect] = this layer over `under` (a full-canvas copy of the pixels without overlays)."""
        x0, y0, x1, y1 = rect
        lx, ly = self.rect[0], self.rect[1]
        part = (slice(y0 - ly, y1 - ly), slice(x0 - lx, x1 - lx))
        blended = under[y0:y1, x0:x1].astype(np.float32) * self.keep[part] + self.premultiplied[part]
        frame[y0:y1, x0:x1] = (blended + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class SceneOverlayOptions:
    template: SceneTemplate
    layout: SceneLayout
    label: LabelSettings
    max_pixels: int  # images.max_pixels: the logo is refused above it before it is decoded
    avatar_name: str = ""
    cues: Sequence[BurnedCue] = ()


class SceneOverlay:
    """Logo, name tag and burnt-in captions over the composed frame (before the label: it always wins).

    Like the labeler it keeps the pixels under its layers (`under`, refreshed inside the dirty rect),
    so a layer is never blended twice over itself; the caption box is redrawn only when the cue
    changes, and the dirty rect then widens to it so the watermark follows."""

    name = "scene_overlay"

    def __init__(self, options: SceneOverlayOptions) -> None:
        self.options = options
        self.cue_starts = np.array([cue.start for cue in options.cues], np.float64)

    def requirements(self) -> list[str]:
        return []

    def close(self) -> None:
        self.under = None
        self.static = []
        self.caption = None

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        template, layout, label = self.options.template, self.options.layout, self.options.label
        short = min(layout.width, layout.height)
        self.static: list[Layer] = []
        if template.logo is not None and layout.logo is not None:
            x0, y0, x1, y1 = layout.logo
            logo = read_asset(template.logo.image, "logo", self.options.max_pixels)
            image = cv2.resize(logo, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
            alpha = image[..., 3:].astype(np.float32) / 255 * template.logo.opacity
            self.static.append(Layer.of(image[..., :3].astype(np.float32), alpha, (x0, y0)))
        if template.name_tag is not None and layout.name_tag is not None and self.options.avatar_name:
            x0, y0, x1, _ = layout.name_tag
            font = label_font(label)
            pixels, alpha = render_name_tag(template.name_tag, self.options.avatar_name, short, x1 - x0, font)
            if template.name_tag.align == "right":
                x0 = x1 - alpha.shape[1]
            elif template.name_tag.align == "center":
                x0 = (x0 + x1 - alpha.shape[1]) // 2
            self.static.append(Layer.of(pixels, alpha, (x0, y0)))
        self.caption: Layer | None = None
        self.cue: int | None = None
        self.under = base.copy()
        self.last: np.ndarray | None = None
        frame = base.copy()
        for layer in self.static:
            layer.blend_into(frame, self.under, layer.rect)
        return frame

    def cue_at(self, time_s: float) -> int | None:
        """Index of the burnt cue on screen at `time_s`, or None between cues."""
        index = int(np.searchsorted(self.cue_starts, time_s, side="right")) - 1
        if index < 0 or time_s >= self.options.cues[index].end:
            return None
        return index

    def _caption_layer(self, index: int | None) -> Layer | None:
        if index is None or self.options.layout.captions is None or self.options.template.captions is None:
            return None
        layout, style = self.options.layout, self.options.template.captions
        short = min(layout.width, layout.height)
        pixels, alpha = render_caption(self.options.cues[index].lines, style, short, label_font(self.options.label))
        x0, _, x1, y1 = layout.captions
        return Layer.of(pixels, alpha, ((x0 + x1 - alpha.shape[1]) // 2, y1 - alpha.shape[0]))

    def _layers(self) -> list[Layer]:
        return [*self.static, *([self.caption] if self.caption is not None else [])]

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        dirty = context.dirty
        if self.last is None or (dirty is None and frame is not self.last):
            dirty = (0, 0, frame.shape[1], frame.shape[0])  # the first frame, or an unknown change: all of it
            context.dirty = dirty
        self.last = frame
        if dirty is not None:
            x0, y0, x1, y1 = dirty
            self.under[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
        refresh = [dirty] if dirty is not None else []
        cue = self.cue_at(context.time_s) if len(self.options.cues) else None
        if cue != self.cue:
            old = self.caption.rect if self.caption is not None else None
            self.cue, self.caption = cue, self._caption_layer(cue)
            changed = _union(old, self.caption.rect if self.caption is not None else None)
            if changed is not None:
                refresh.append(changed)
                if old is not None:  # the old caption's pixels go back to what is under them
                    ox0, oy0, ox1, oy1 = old
                    frame[oy0:oy1, ox0:ox1] = self.under[oy0:oy1, ox0:ox1]
                context.dirty = _union(context.dirty, changed)
        for rect in refresh:
            for layer in self._layers():
                part = _intersect(rect, layer.rect)
                if part is not None:
                    layer.blend_into(frame, self.under, part)
        return frame


def _compositor(setup: ChainSetup, options: None) -> Processor:
    """The classic layout's compositor, or the scene's when a scene is in use (`setup.scene`)."""
    scene = setup.scene
    if scene is not None:
        parts = (scene.template, scene.layout, setup.label, scene.background, scene.person)
        return SceneCompositor(SceneCompositorOptions(scene.name, *parts))
    post = setup.post
    return Compositor(CompositorOptions(setup.width, setup.height, post.background, tuple(post.background_color)))


COMPOSITOR = ProcessorSpec("compositor", create=_compositor, rule=ChainRule(last=True, why="it makes the output frame"))
