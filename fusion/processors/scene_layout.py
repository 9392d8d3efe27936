"""Branded scenes: where everything sits on the canvas, checked against the AI label, and the static
background painted once per video.

Why the check lives here and runs when a template is used (`layout_scene`, called by the request
checks before any compute and by `dhf scene check`): the label's rectangle depends on the canvas and
the label font, which only the labeler knows. The rule: the compliance label always wins. No element
(logo, name tag, caption box, the person's head) may come within `KEEP_OUT` of the label's rectangle,
the label must fit the canvas's top-right quarter (where `dhf verify` looks for it), and what is
under it must leave its text at least `MIN_LABEL_CONTRAST` (WCAG AA for text) against its plate.
A refusal is one line naming the element, both rectangles and the fix.

The person is the avatar's head-and-shoulders square (the reenactor's work image, upscaled), standing
on the bottom edge of the canvas at `person.x`; its head zone (`HEAD_ZONE`, from the framing's
proportions) must keep the safe margin from the canvas's top and sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from config import LabelSettings
from config.settings import SceneBackground, SceneTemplate
from fusion.burned_captions import caption_box_height, name_tag_height
from fusion.errors import FusionError
from fusion.processors.base import Rect
from fusion.processors.post import Labeler, LabelOptions, find_font
from media.images import decode_bounded

MIN_LABEL_CONTRAST = 4.5  # WCAG 2 AA for normal text: label text against its plate, over the scene
HEAD_ZONE = (0.22, 0.06, 0.78, 0.7)  # the head (hair included) inside the person square, × its side
FACE_ZONE = (0.3, 0.2, 0.7, 0.62)  # the face (brows to chin): no logo, tag or caption may cover it
KEEP_OUT = 0.01  # × the canvas's short side: no element closer than this to the label
PLATE_ALPHA_FACTOR = 150 / 255  # the label plate's alpha before opacity (fusion.processors.post.Labeler)


class SceneError(FusionError):
    """A scene template that cannot be used (overlaps the label, does not fit, a missing image)."""

    code = "scene"  # an unknown or unusable scene is the request's or the config's problem, not the engine's


@dataclass(frozen=True)
class SceneLayout:
    """Every element's rectangle on the canvas (x0, y0, x1, y1). `square` may reach past the canvas
    (a 9:16 canvas cuts the shoulders); `name_tag` and `captions` are the largest extent they may take."""

    width: int
    height: int
    label: Rect
    square: Rect
    head: Rect
    logo: Rect | None
    name_tag: Rect | None
    captions: Rect | None
    margin: int

    @property
    def side(self) -> int:
        return self.square[2] - self.square[0]


def hex_bgr(color: str) -> tuple[int, int, int]:
    """'#RRGGBB' → (B, G, R), the order OpenCV frames use."""
    value = color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def label_font(label: LabelSettings) -> Path:
    font = find_font(label.fonts)
    if font is None:
        raise SceneError(
            f"no CJK font for the AI label (looked for {', '.join(map(str, label.fonts))}); "
            "run scripts/setup to install fonts-wqy-zenhei"
        )
    return font


def label_rect(label: LabelSettings, width: int, height: int) -> Rect:
    """Where the labeler puts the AI label in a frame of this size."""
    options = LabelOptions(label.text, label_font(label), label.height_ratio, label.margin_ratio, label.opacity)
    return Labeler(options).layout(width, height)[2]


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _grow(rect: Rect, by: int) -> Rect:
    return (rect[0] - by, rect[1] - by, rect[2] + by, rect[3] + by)


def _text(rect: Rect) -> str:
    return f"({rect[0]},{rect[1]})-({rect[2]},{rect[3]})"


def logo_size(template: SceneTemplate, max_pixels: int) -> tuple[int, int]:
    """The logo's (width, height) on this canvas: `logo.height` × the short side, aspect kept."""
    assert template.logo is not None
    image = read_asset(template.logo.image, "logo", max_pixels)
    height = max(2, round(template.logo.height * min(template.width, template.height)))
    return max(2, round(image.shape[1] * height / image.shape[0])), height


def read_asset(path: Path, what: str, max_pixels: int) -> np.ndarray:
    """A template's image as BGRA (alpha 255 where the file has none); one line when unreadable or
    when its header announces more than `max_pixels` (`images.max_pixels`: refused before decoding)."""
    if not Path(path).is_file():
        raise SceneError(f"the scene's {what} image {path} does not exist; fix the path in the scene template")
    image = decode_bounded(Path(path), max_pixels, cv2.IMREAD_UNCHANGED, f"the scene's {what} image")
    if image is None or image.ndim not in (2, 3):
        raise SceneError(f"the scene's {what} image {path} cannot be read; save it as PNG or JPEG")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    if image.dtype != np.uint8:
        image = (image / 257).astype(np.uint8)
    return image


def _corner_rect(corner: str, size: tuple[int, int], layout_size: tuple[int, int], margin: int) -> Rect:
    (w, h), (width, height) = size, layout_size
    x0 = margin if corner.endswith("left") else width - margin - w
    y0 = margin if corner.startswith("top") else height - margin - h
    return (x0, y0, x0 + w, y0 + h)


def layout_scene(name: str, template: SceneTemplate, label_settings: LabelSettings, max_pixels: int) -> SceneLayout:
    """Every element's place on the canvas, or a one-line `SceneError` when the template breaks a rule
    (a logo or background image above `max_pixels` is refused before it is decoded)."""
    width, height = template.width, template.height
    short = min(width, height)
    margin = round(template.margin * short)
    label = label_rect(label_settings, width, height)
    where = f"scene '{name}' ({width}×{height})"
    if label[0] < width // 2 or label[3] > height // 4 or label[0] < 0:
        raise SceneError(
            f"{where}: the AI label {_text(label)} does not fit the canvas's top-right quarter; "
            "make the canvas wider (at least 2× the label's width plus its margin)"
        )
    side = round(template.person.height * height)
    left = round(template.person.x * width - side / 2)
    square = (left, height - side, left + side, height)
    hx0, hy0, hx1, hy1 = HEAD_ZONE
    top = height - side
    head = (left + round(hx0 * side), top + round(hy0 * side), left + round(hx1 * side), top + round(hy1 * side))
    if head[0] < margin or head[1] < margin or head[2] > width - margin:
        raise SceneError(
            f"{where}: the person's head {_text(head)} reaches into the safe margin ({margin} px); "
            "lower person.height or move person.x towards the centre"
        )
    logo = None
    if template.logo is not None:
        logo = _corner_rect(template.logo.corner, logo_size(template, max_pixels), (width, height), margin)
    name_tag = None
    if template.name_tag is not None:
        tag = template.name_tag
        tag_w, tag_h = round(tag.max_width * width), name_tag_height(tag, short)
        x0 = {"left": margin, "right": width - margin - tag_w, "center": (width - tag_w) // 2}[tag.align]
        y0 = round(tag.y * height)
        name_tag = (x0, y0, x0 + tag_w, y0 + tag_h)
    captions = None
    if template.captions is not None:
        style = template.captions
        box_w, box_h = round(style.max_width * width), caption_box_height(style, short)
        y1 = height - round(style.bottom * height)
        captions = ((width - box_w) // 2, y1 - box_h, (width - box_w) // 2 + box_w, y1)
    keep_out = _grow(label, max(1, round(KEEP_OUT * short)))
    elements = {"logo": logo, "name tag": name_tag, "caption box": captions, "person's head": head}
    for element, rect in elements.items():
        if rect is None:
            continue
        if rect[0] < 0 or rect[1] < 0 or rect[2] > width or rect[3] > height:
            raise SceneError(f"{where}: the {element} {_text(rect)} does not fit the canvas; make it smaller")
        if _overlaps(rect, keep_out):
            raise SceneError(
                f"{where}: the {element} {_text(rect)} overlaps the AI label {_text(label)}; the label always "
                "wins: move or shrink the element (the label's corner is top-right)"
            )
    fx0, fy0, fx1, fy1 = FACE_ZONE
    face = (left + round(fx0 * side), top + round(fy0 * side), left + round(fx1 * side), top + round(fy1 * side))
    others = [(n, r) for n, r in elements.items() if r is not None and n != "person's head"]
    for element, rect in others:
        if _overlaps(rect, face):
            raise SceneError(
                f"{where}: the {element} {_text(rect)} covers the person's face {_text(face)}; move it "
                "(e.g. name_tag.y lower) or change person.height / person.x"
            )
    for i, (first, a) in enumerate(others):
        for second, b in others[i + 1 :]:
            if _overlaps(a, b):
                raise SceneError(f"{where}: the {first} {_text(a)} overlaps the {second} {_text(b)}; move one of them")
    layout = SceneLayout(width, height, label, square, head, logo, name_tag, captions, margin)
    if template.background.kind != "blur":
        canvas = background_canvas(template.background, width, height, max_pixels=max_pixels)
        check_label_contrast(where, canvas, label, label_settings)
    return layout


def label_contrast(under: np.ndarray, label: LabelSettings) -> float:
    """WCAG contrast ratio of the label's text against its plate, both blended over `under` (BGR),
    for the brightest part of it (the worst case: a light background greys the dark plate)."""
    grey = cv2.cvtColor(under, cv2.COLOR_BGR2GRAY).astype(np.float64)
    background = float(np.percentile(grey, 95))
    plate_alpha, text_alpha = PLATE_ALPHA_FACTOR * label.opacity, label.opacity
    plate = background * (1 - plate_alpha)
    text = 255 * text_alpha + plate * (1 - text_alpha)

    def luminance(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (luminance(text) + 0.05) / (luminance(plate) + 0.05)


def check_label_contrast(where: str, canvas: np.ndarray, rect: Rect, label: LabelSettings) -> None:
    x0, y0, x1, y1 = rect
    ratio = label_contrast(canvas[y0:y1, x0:x1], label)
    if ratio < MIN_LABEL_CONTRAST:
        raise SceneError(
            f"{where}: the background under the AI label {_text(rect)} is too light (label contrast "
            f"{ratio:.1f}:1 < {MIN_LABEL_CONTRAST}:1); the label always wins: darken the background's top-right corner"
        )


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled to cover width × height, centred, the overhang cut (never stretched)."""
    scale = max(width / image.shape[1], height / image.shape[0])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, size, interpolation=interpolation)
    x0, y0 = (size[0] - width) // 2, (size[1] - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def background_canvas(
    background: SceneBackground, width: int, height: int, portrait: np.ndarray | None = None, *, max_pixels: int
) -> np.ndarray:
    """The static background (BGR, uint8), painted once per video. `portrait` is needed for `blur`;
    an image above `max_pixels` is refused before it is decoded."""
    color = hex_bgr(background.color)
    if background.kind == "solid":
        return np.full((height, width, 3), color, np.uint8)
    if background.kind == "image":
        assert background.image is not None
        image = read_asset(background.image, "background", max_pixels)
        alpha = image[..., 3:].astype(np.float32) / 255
        flat = (image[..., :3] * alpha + np.array(color, np.float32) * (1 - alpha)).astype(np.uint8)
        canvas = cover(flat, width, height)
        if background.soften > 0:
            canvas = cv2.GaussianBlur(canvas, (0, 0), background.soften * min(width, height))
        return canvas
    return blurred_canvas(background, width, height, portrait)


def blurred_canvas(background: SceneBackground, width: int, height: int, portrait: np.ndarray | None) -> np.ndarray:
    """`blur`: the portrait itself, blurred and tinted (a solid colour until there is a portrait);
    no image file is read."""
    color = hex_bgr(background.color)
    if portrait is None:
        return np.full((height, width, 3), color, np.uint8)
    blurred = cv2.GaussianBlur(cover(portrait, width, height), (0, 0), 40)
    return cv2.addWeighted(blurred, 0.55, np.full_like(blurred, color), 0.45, 0)


def square_background(canvas: np.ndarray, square: Rect, size: int) -> np.ndarray:
    """The canvas under the person square, at `size` × `size` (the reenactor's work size); where the
    square reaches past the canvas its edge pixels are repeated (that part is never shown)."""
    x0, y0, x1, y1 = square
    height, width = canvas.shape[:2]
    pad = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    padded = cv2.copyMakeBorder(canvas, *pad, cv2.BORDER_REPLICATE) if any(pad) else canvas
    region = padded[y0 + pad[0] : y1 + pad[0], x0 + pad[2] : x1 + pad[2]]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def cut_out(work: np.ndarray, alpha: np.ndarray, behind: np.ndarray) -> np.ndarray:
    """The work image with the photo's backdrop replaced by the scene's (alpha: soft person; `work`
    best with its edge colours decontaminated, vision.matte.Decontaminator)."""
    a = alpha[..., None]
    return (work.astype(np.float32) * a + behind.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8)
