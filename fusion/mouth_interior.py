"""The inside of an open mouth, painted between the moved inner lips (in the rest pose of the head).

What makes a synthetic mouth read as a mouth rather than a painted hole (DESIGN.md, "What a
weight-free reenactor can reach"):
- no dark outline: next to the lips the inside is wet, reddish mucosa; it darkens only with depth and
  only as far as the mouth is open, so a nearly closed mouth shows a soft dark-red line, not black;
- depth: the cavity darkens towards its centre and its corners (the buccal corridor);
- teeth: the photo's own upper teeth when it shows them, fixed to the skull (they do not follow the
  lips); otherwise upper incisors synthesized in the photo's brightness, hanging from where the
  upper lip rests, with faint gaps between them; lower teeth appear once the jaw opens beyond about
  a third of the mouth width;
- the tongue: low and broad at rest, its tip raised to the upper teeth on L, T, D, N, TH;
- closed lips that showed teeth in the photo meet on a soft contact line (no teeth between them).
The result is a small RGBA layer; the reenactor warps it with the head's motion and blends it in.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fusion.motion_basis import FaceFrame
from vision import topology as topo

SUPERSAMPLE = 2
TEETH_HEIGHT = 0.12  # visible upper incisors below the resting upper lip, × mouth width W
LOWER_TEETH_FROM = 0.33  # lower teeth show once the opening passes this (× W) ...
LOWER_TEETH_HEIGHT = 0.04  # ... up to this height
MIN_OPENING = 0.02  # × W: lips closer than this are shut (nothing painted between them)
TEETH_TOP_INSET = 0.05  # × W below the photo's first row of teeth: the tooth body (its top has dark gaps)
TONGUE_HEIGHT = 0.26  # the resting tongue's top, × the opening's height at the centre (low: a cavity above)
LIP_RIM = 0.5  # opacity of the lower lip's wet inner rim at a wide opening
LIP_HIGHLIGHT = 0.35  # ... and of the highlight across its middle
TOOTH_SPACING = 0.095  # central incisor width (× W), for the faint gaps between the teeth
TOOTH_WIDTH_SPREAD = 0.15  # each synthesized tooth up to this share wider or narrower than its nominal width


def _tooth_edges(side_seed: float, count: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Where each synthesized tooth ends, from the centre out (× TOOTH_SPACING), and its index:
    central incisors 1, the others 0.8 wide, each a little wider or narrower, differently on the
    two sides (real teeth are neither equal nor mirrored; an even row read as a denture)."""
    own = 1 + TOOTH_WIDTH_SPREAD * np.sin(np.arange(count) * 2.39996 + side_seed)
    widths = np.array([1.0] + [0.8] * (count - 1)) * own
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    return edges, np.arange(count + 1, dtype=np.float64)


TOOTH_EDGES = (_tooth_edges(0.7), _tooth_edges(2.1))  # (left, right) of the mouth's centre


@dataclass(frozen=True)
class Layer:
    """An RGBA patch in rest-pose work coordinates: `box` = (x0, y0, x1, y1)."""

    box: tuple[int, int, int, int]
    colour: np.ndarray  # (h, w, 3) float32 BGR
    alpha: np.ndarray  # (h, w) float32 0..1


@dataclass(frozen=True)
class MouthPalette:
    lip: np.ndarray
    mucosa: np.ndarray
    cavity: np.ndarray
    tongue: np.ndarray
    teeth: np.ndarray


def _mean_colour(image: np.ndarray, polygon: np.ndarray) -> np.ndarray | None:
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 255)
    return np.array(cv2.mean(image, mask=mask)[:3], np.float32) if mask.any() else None


def _desaturate(colour: np.ndarray, amount: float) -> np.ndarray:
    return (colour * (1 - amount) + colour.mean() * amount).astype(np.float32)


def palette_from_photo(base: np.ndarray, landmarks: np.ndarray) -> MouthPalette:
    """Interior colours derived from the photo's lips and skin, so every avatar gets its own."""
    lower_lip = np.concatenate(
        [landmarks[list(topo.LIPS_OUTER_LOWER), :2], landmarks[list(topo.LIPS_INNER_LOWER), :2][::-1]]
    )
    lip = _mean_colour(base, lower_lip)
    if lip is None:
        lip = np.array([90, 95, 165], np.float32)
    mask = np.zeros(base.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[list(topo.FACE_OVAL), :2]).astype(np.int32)], 255)
    skin_light = base[mask > 0].max(axis=1) if mask.any() else np.array([200.0])
    brightness = float(np.percentile(skin_light, 90)) / 215.0  # teeth about as bright as the skin's highlights
    return MouthPalette(
        lip=lip,
        # Wet mucosa in the mouth's shade: darker and browner than the lips (a saturated maroon reads
        # as paint); the cavity behind it nearly black.
        mucosa=(_desaturate(lip, 0.35) * np.array([0.5, 0.48, 0.6], np.float32)).astype(np.float32),
        cavity=(_desaturate(lip, 0.4) * np.array([0.14, 0.13, 0.2], np.float32) + np.array([5, 5, 7], np.float32)),
        tongue=(_desaturate(lip, 0.2) * np.array([0.62, 0.58, 0.8], np.float32)).astype(np.float32),
        teeth=np.clip(np.array([212, 226, 238], np.float32) * np.clip(brightness, 0.75, 1.05), 0, 255),
    )


def smooth_contour(points: np.ndarray, subdivisions: int = 4) -> np.ndarray:
    """A Catmull-Rom spline through the contour points (a polygon of 11 lip points has corners)."""
    padded = np.concatenate([points[:1] * 2 - points[1:2], points, points[-1:] * 2 - points[-2:-1]])
    t = np.linspace(0, 1, subdivisions, endpoint=False)[:, None]
    pieces = []
    for index in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[index - 1 : index + 3]
        cubic = (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
        pieces.append(0.5 * (2 * p1 + (-p0 + p2) * t + cubic))
    return np.concatenate([*pieces, points[-1:]])


def _curve(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def _smoothstep(edge0: float, edge1: float, value: np.ndarray | float) -> np.ndarray:
    t = np.clip((np.asarray(value, np.float32) - edge0) / max(edge1 - edge0, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class MouthPainter:
    """Prepared once per avatar; `paint` per frame returns the interior layer (or None when shut)."""

    def __init__(self, base: np.ndarray, landmarks: np.ndarray, frame: FaceFrame) -> None:
        self.base = base
        self.frame = frame
        self.width = frame.mouth_width
        self.palette = palette_from_photo(base, landmarks)
        self.rest_upper = landmarks[list(topo.LIPS_INNER_UPPER), :2].astype(np.float64)
        self.rest_lower = landmarks[list(topo.LIPS_INNER_LOWER), :2].astype(np.float64)
        self.rest_outer_lower = landmarks[list(topo.LIPS_OUTER_LOWER), :2].astype(np.float64)
        self.rest_corners_x = np.sort(landmarks[list(topo.MOUTH_CORNERS), 0].astype(np.float64))
        gap = float(np.max(self.rest_lower[:, 1] - self.rest_upper[:, 1]))
        self.photo_gap = gap  # pixels between the photo's inner lips (teeth show when large)
        self.photo_teeth = self._photo_teeth_mask() if gap > 0.06 * self.width else None
        self.teeth_top = self._teeth_top() if self.photo_teeth is not None else None

    def _teeth_top(self) -> np.ndarray:
        """Per photo column, the first row of the photo's upper teeth (inf where it shows none): a
        raised upper lip uncovers more of the same teeth, not a dark band."""
        solid = self.photo_teeth > 0.5
        rows = np.where(solid.any(axis=0), np.argmax(solid, axis=0), 10**6).astype(np.float32)
        # The gum line is a smooth curve: a dark gap between two teeth must not push it down.
        reach = max(1, int(0.06 * self.width))
        rows = cv2.erode(rows.reshape(1, -1), np.ones((1, 2 * reach + 1), np.uint8)).ravel()
        return np.where(rows < 10**5, rows, np.inf).astype(np.float32)

    def _photo_teeth_mask(self) -> np.ndarray:
        """Where the photo shows teeth: its inner-lip opening, bright pixels only (not the dark gaps)."""
        polygon = np.concatenate([self.rest_upper, self.rest_lower[::-1]])
        mask = np.zeros(self.base.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        grey = cv2.cvtColor(self.base, cv2.COLOR_BGR2GRAY).astype(np.float32)
        inside = grey[mask > 128]
        threshold = float(np.percentile(inside, 35)) if inside.size else 128.0
        bright = _smoothstep(threshold - 12, threshold + 12, grey)
        return (mask.astype(np.float32) / 255.0) * bright

    # ----------------------------------------------------------------------------------------------
    def paint(self, upper: np.ndarray, lower: np.ndarray, motion, shape: tuple[int, int]) -> Layer | None:
        """The interior between the moved inner lips `upper` and `lower` (rest-pose coordinates)."""
        opening = float(np.max(lower[:, 1] - upper[:, 1])) - self.photo_gap * (self.photo_teeth is None)
        if opening < MIN_OPENING * self.width:
            return self._contact_line(upper, lower, shape) if self.photo_teeth is not None else None
        upper, lower = smooth_contour(upper), smooth_contour(lower)
        width = self.width
        polygon = np.concatenate([upper, lower[::-1]])
        teeth_bottom = self.rest_upper[:, 1] + TEETH_HEIGHT * width
        margin = np.array([max(3, int(0.08 * width)), 3])  # room beside the corners for stretched lip line
        # Out to the photo's corners: beside a narrowed (rounded) mouth the lips' line is torn there.
        low = np.floor(np.minimum(polygon.min(0), [self.rest_corners_x[0], np.inf])).astype(int) - margin
        lip_bottom = lower[:, 1] + self._lower_lip_thickness(lower[:, 0])  # the lower lip keeps its thickness
        lowest = max(teeth_bottom.max(), lip_bottom.max())
        right = max(polygon[:, 0].max(), self.rest_corners_x[1])
        high = np.ceil(np.maximum(polygon.max(0), [right, lowest])).astype(int) + margin + 1
        x0, y0 = np.maximum(low, 0)
        x1, y1 = np.minimum(high, [shape[1], shape[0]])
        if x1 - x0 < 4 or y1 - y0 < 3:
            return None
        s = SUPERSAMPLE
        h, w = (y1 - y0) * s, (x1 - x0) * s
        xs = (np.arange(w, dtype=np.float32) + 0.5) / s - 0.5 + x0  # work coordinates of the columns
        ys = ((np.arange(h, dtype=np.float32) + 0.5) / s - 0.5 + y0)[:, None]
        top = _curve(upper, xs)[None, :]
        bottom = _curve(lower, xs)[None, :]
        span = np.maximum(bottom - top, 0.5)
        centre_x = float(polygon[:, 0].mean())
        half = max(1.0, float(np.ptp(polygon[:, 0])) / 2)
        across = np.clip(np.abs(xs - centre_x) / half, 0, 1)[None, :]
        colour = self._cavity(ys, top, bottom, span, across, opening)
        colour = self._tongue(colour, ys, top, bottom, span, across, opening, motion)
        colour = self._lower_teeth(colour, ys, bottom, across, opening)
        colour = self._upper_teeth(colour, xs, ys, top, across, x0, y0)
        colour = self._tongue_tip(colour, xs, ys, top, bottom, across, motion)
        # Under the upper lip: a soft shadow it casts on whatever is behind.
        shadow = np.exp(-np.clip(ys - top, 0, None) / (0.035 * width + 0.5))
        colour *= (1 - 0.3 * shadow)[..., None]
        alpha = self._alpha(polygon - [x0, y0], h, w)
        small = cv2.resize(colour, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        # The lip's shading is soft: the layer's own resolution is enough (no supersampling).
        lip_xs = np.arange(x0, x1, dtype=np.float32)
        lip_ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        lip_across = np.clip(np.abs(lip_xs - centre_x) / half, 0, 1)[None, :]
        lip_colour, lip_alpha = self._lower_lip(lip_xs, lip_ys, _curve(lower, lip_xs)[None, :], lip_across, opening)
        lip_alpha = lip_alpha * (1 - alpha)
        total = alpha + lip_alpha
        small = (small * alpha[..., None] + lip_colour * lip_alpha[..., None]) / np.maximum(total, 1e-6)[..., None]
        return Layer((int(x0), int(y0), int(x1), int(y1)), small.astype(np.float32), total.astype(np.float32))

    def _lower_lip_thickness(self, xs: np.ndarray) -> np.ndarray:
        """The photo's lower lip thickness at each column (the jaw moves the whole lip together)."""
        return np.maximum(_curve(self.rest_outer_lower, xs) - _curve(self.rest_lower, xs), 1.0)

    def _lower_lip(self, xs, ys, bottom, across, opening: float) -> tuple[np.ndarray, np.ndarray]:
        """Volume on the photo's own lower lip as the jaw opens (a translucent shading layer over the
        warped lip, so its texture stays the photo's): a deeper, wet rim along its inner edge, a soft
        highlight across its middle and a shadow where it turns under towards the chin. Without them
        an open mouth's lower lip is the resting photo's lip, thin and pale under a lit tongue: the
        viewer read the tongue as the lip and the mouth as painted (issue 26 item 6, round two)."""
        openness = float(_smoothstep(0.03 * self.width, 0.2 * self.width, opening))
        h, w = ys.shape[0], xs.shape[0]
        if openness <= 0:
            return np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32)
        into = (ys - bottom) / self._lower_lip_thickness(xs)[None, :]  # 0 at its inner edge, 1 at its outer
        middle = np.clip(1 - (across / 0.9) ** 2, 0.0, 1.0)
        band = _smoothstep(-0.05, 0.08, into) * (1 - _smoothstep(0.85, 1.1, into)) * middle
        lip = self.palette.lip
        highlight = LIP_HIGHLIGHT * np.exp(-(((into - 0.42) / 0.16) ** 2)) * middle
        parts = (  # (colour, opacity), painted in this order
            (lip * np.array([0.72, 0.7, 0.9], np.float32), LIP_RIM * np.exp(-(((into - 0.06) / 0.12) ** 2))),
            (lip * np.array([0.8, 0.8, 0.86], np.float32), 0.22 * np.exp(-(((into - 0.95) / 0.15) ** 2))),
            (lip * 0.5 + np.array([128, 126, 130], np.float32), highlight),
        )
        colour = np.zeros((h, w, 3), np.float32)
        alpha = np.zeros((h, w), np.float32)
        for part_colour, opacity in parts:
            a = (openness * band * opacity).astype(np.float32)
            colour = colour * (1 - a[..., None]) + part_colour[None, None, :] * a[..., None]  # premultiplied
            alpha = alpha * (1 - a) + a
        return (colour / np.maximum(alpha, 1e-6)[..., None]).astype(np.float32), alpha

    def _alpha(self, local_polygon: np.ndarray, h: int, w: int) -> np.ndarray:
        """The opening, slightly dilated under the lips' edges (smeared pixels there would read as a
        dark rim), anti-aliased and softened: a wet edge, not a drawn outline."""
        s = SUPERSAMPLE
        mask = np.zeros((h, w), np.uint8)
        points = np.round((local_polygon + 0.5) * s * 16 - 8).astype(np.int32)
        cv2.fillPoly(mask, [points], 255, cv2.LINE_AA, shift=4)
        cv2.polylines(mask, [points], True, 255, max(1, s), cv2.LINE_AA, shift=4)
        small = cv2.resize(mask, (w // s, h // s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        return cv2.GaussianBlur(small, (0, 0), 0.55)

    def _cavity(self, ys, top, bottom, span, across, opening: float) -> np.ndarray:
        """Wet mucosa along the lips, darkening with depth (more the wider the mouth is open) and a
        little towards the corners."""
        p = self.palette
        edge_distance = np.minimum(ys - top, bottom - ys)
        depth = _smoothstep(0.0, 1.0, edge_distance / (0.28 * span + 1.0))
        openness = float(_smoothstep(0.02 * self.width, 0.22 * self.width, opening))
        darkness = depth * (0.45 + 0.55 * openness)
        colour = p.mucosa[None, None, :] * (1 - darkness[..., None]) + p.cavity[None, None, :] * darkness[..., None]
        corridor = 1.0 - 0.25 * across**4  # the corners are in shadow
        return (colour * corridor[..., None]).astype(np.float32)

    def _tongue(self, colour, ys, top, bottom, span, across, opening: float, motion) -> np.ndarray:
        """A low, rounded mound on the floor of the mouth, narrower than the opening; its tip arches
        up to the upper teeth on L, T, D, N, TH.

        Seen from the front, the part of the tongue higher in the picture is further back in the
        mouth: it fades into the cavity's dark (no edge) and is lit only towards the front, just
        above the lower teeth. Lit along its top instead, it read as a flat maroon lower lip with a
        bright rim under the upper teeth (round two of issue 26 item 6)."""
        visible = float(_smoothstep(0.07 * self.width, 0.18 * self.width, opening))
        if visible <= 0:
            return colour
        raise_ = float(np.clip(getattr(motion, "tongue", 0.0), 0.0, 1.0))
        half_width = 0.62 + 0.1 * raise_  # of the opening's half width
        shape = np.clip(1 - (across / half_width) ** 2, 0.0, 1.0)  # 1 at the centre line, 0 at its sides
        rest_height = TONGUE_HEIGHT + 0.04 * float(np.clip(opening / (0.35 * self.width), 0, 1))  # of the span
        height = rest_height * (1 - raise_) + 0.85 * raise_
        surface = bottom - span * height * np.sqrt(shape)
        soft = 0.08 * span + 1.5  # its back recedes into the dark: a gradient, not an outline
        inside = _smoothstep(-1.0, 1.0, (ys - surface) / soft) * _smoothstep(0.0, 0.08, shape)
        front = np.clip((ys - surface) / np.maximum(bottom - surface, 1.0), 0.0, 1.0)  # 0 back … 1 front
        # Lit towards the front (a wet sheen a little above the lower teeth, at its middle), in shadow
        # at its back and its sides; a faint groove along its middle; a fine fixed grain (papillae).
        sheen = np.exp(-(((front - 0.7) / 0.2) ** 2)) * shape**2
        groove = np.exp(-((across * half_width / 0.07) ** 2)) * front
        grain = np.sin(ys * 2.9 + np.sin(ys * 0.7) * 3.0)[..., None] * np.sin(across * 37.0 + 1.3)
        shade = (0.55 + 0.3 * shape) * (0.55 + 0.85 * front) + 0.22 * sheen - 0.08 * groove + 0.025 * grain[..., 0]
        tongue = self.palette.tongue[None, None, :] * shade[..., None]
        amount = (visible * inside)[..., None]
        return (colour * (1 - amount) + tongue * amount).astype(np.float32)

    def _lower_teeth(self, colour, ys, bottom, across, opening: float) -> np.ndarray:
        """The tips of the lower incisors just above the lower lip, once the jaw is well open."""
        visible = float(_smoothstep(LOWER_TEETH_FROM * self.width, (LOWER_TEETH_FROM + 0.1) * self.width, opening))
        if visible <= 0:
            return colour
        profile = np.clip(1 - (across / 0.5) ** 2, 0.0, 1.0)
        height = LOWER_TEETH_HEIGHT * self.width * visible * np.sqrt(profile)
        band = _smoothstep(-1.0, 1.0, ys - (bottom - height)) * _smoothstep(0.0, 0.3, profile)
        stripes = np.abs(np.cos(np.pi * across / 0.16))  # lower incisors: narrower than the upper ones
        gaps = np.exp(-(((1 - stripes) / 0.15) ** 2))
        teeth = self.palette.teeth[None, None, :] * ((0.76 - 0.25 * across**2) * (1 - 0.12 * gaps))[..., None]
        amount = (0.85 * band)[..., None]
        return (colour * (1 - amount) + teeth * amount).astype(np.float32)

    def _tongue_tip(self, colour, xs, ys, top, bottom, across, motion) -> np.ndarray:
        """TH: the tip of the tongue shows between the teeth, in front of the upper incisors' edge."""
        amount = float(np.clip((getattr(motion, "tongue", 0.0) - 0.92) / 0.08, 0.0, 1.0))
        if amount <= 0:
            return colour
        width = self.width
        edge = _curve(self.rest_upper, xs)[None, :] + TEETH_HEIGHT * width  # the incisors' biting edge
        half = 0.16 * width
        centre = float(np.mean(self.rest_upper[:, 0]))
        shape = np.clip(1 - ((xs[None, :] - centre) / half) ** 2, 0.0, 1.0)
        tip_top = edge - 0.045 * width * np.sqrt(shape)
        inside = _smoothstep(-0.8, 0.8, ys - tip_top) * _smoothstep(0.0, 0.1, shape) * (ys < bottom + 1)
        tip = self.palette.tongue[None, None, :] * (1.05 - 0.15 * (1 - shape))[..., None]
        alpha = (amount * inside)[..., None]
        return (colour * (1 - alpha) + tip * alpha).astype(np.float32)

    def _upper_teeth(self, colour, xs, ys, top, across, x0: int, y0: int) -> np.ndarray:
        """The photo's own teeth where it shows them, else synthesized incisors fixed to the skull."""
        if self.photo_teeth is not None:
            # Above the photo's teeth (uncovered by a raised lip) the same teeth continue up, in the
            # shadow of the lip: their first rows repeated, a little darker with the distance.
            columns = np.clip(np.round(xs).astype(int), 0, self.base.shape[1] - 1)
            first = self.teeth_top[columns][None, :] + TEETH_TOP_INSET * self.width
            rows = np.broadcast_to(ys, colour.shape[:2])
            map_y = np.where(np.isfinite(first), np.maximum(rows, first), rows).astype(np.float32)
            map_x = np.broadcast_to(xs[None, :], colour.shape[:2]).astype(np.float32)
            pixels = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            amount = cv2.remap(self.photo_teeth, map_x, map_y, cv2.INTER_LINEAR)[..., None]
            above = np.clip((map_y - rows) / (0.08 * self.width + 1.0), 0.0, 1.0)
            pixels = pixels.astype(np.float32) * (1 - 0.35 * above)[..., None]
            return (colour * (1 - amount) + pixels * amount).astype(np.float32)
        width = self.width
        rest_top = _curve(self.rest_upper, xs)[None, :] - 0.02 * width
        centre = float(np.mean(self.rest_upper[:, 0]))
        # One tooth after another from the centre: the two central incisors widest, the rest
        # narrower towards the sides. `phase` counts teeth; its fraction is the place across a tooth.
        offset = (xs - centre) / (TOOTH_SPACING * width)
        magnitude = np.abs(offset)
        phase = np.where(offset < 0, np.interp(magnitude, *TOOTH_EDGES[0]), np.interp(magnitude, *TOOTH_EDGES[1]))
        across_tooth = 2 * (phase - np.floor(phase)) - 1  # -1 … 1 across each tooth
        # Each tooth's biting edge is rounded at its sides; the canines and beyond are shorter.
        height = TEETH_HEIGHT * width * (1 - 0.5 * across**2) * (1 - 0.12 * across_tooth**6)[None, :]
        top = np.minimum(rest_top, top - 0.5)  # a raised lip uncovers the teeth up to it
        below_top = ys - top
        bite = ys - rest_top
        inside = _smoothstep(-0.5, 0.5, below_top) * _smoothstep(-0.7, 0.7, height - bite)
        inside *= _smoothstep(0.05, 0.35, 1 - across)  # the teeth recede into the shadow of the corners
        gaps = np.exp(-(((1 - np.abs(across_tooth)) / 0.09) ** 2))[None, :] * (phase < 3.6)[None, :]
        # Every tooth its own slightly different brightness (fixed per tooth, seeded by its place),
        # each rounded: lighter at its middle; the gaps between them dark.
        index = np.floor(phase) * np.sign(offset) + 7
        own = 1.0 + 0.06 * np.sin(index * 2.39996 + 0.7)[None, :]
        rounded = (1.0 - 0.06 * across_tooth**2)[None, :]
        edge = _smoothstep(0.6, 1.0, bite / np.maximum(height, 1e-3))  # translucent biting edge
        under_lip = np.exp(-np.clip(below_top, 0, None) / (0.04 * width + 0.5))  # the lip's shadow
        shade = (0.97 - 0.45 * across**2) * own * rounded * (1 - 0.09 * gaps)
        shade = shade * (1 - 0.12 * edge) * (1 - 0.15 * under_lip)
        teeth = self.palette.teeth[None, None, :] * shade[..., None]
        teeth = teeth * (1 - 0.1 * edge[..., None]) + np.array([170, 166, 164], np.float32) * 0.1 * edge[..., None]
        amount = inside[..., None]
        return (colour * (1 - amount) + teeth * amount).astype(np.float32)

    def _contact_line(self, upper: np.ndarray, lower: np.ndarray, shape: tuple[int, int]) -> Layer | None:
        """Shut lips that showed teeth in the photo: a soft, slightly darker lip-coloured contact
        line where they meet, over whatever of the teeth the warp squeezed there."""
        line = (upper + lower) / 2
        pad = 3
        x0, y0 = np.maximum(np.floor(line.min(0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(line.max(0)).astype(int) + pad + 1, [shape[1], shape[0]])
        if x1 - x0 < 4 or y1 - y0 < 2:
            return None
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        points = np.round((line - [x0, y0]) * 16).astype(np.int32)
        thickness = max(2, round(0.03 * self.width))
        cv2.polylines(mask, [points], False, 255, thickness, cv2.LINE_AA, shift=4)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.7)
        core = np.zeros_like(mask)
        cv2.polylines(core, [points], False, 255, 1, cv2.LINE_AA, shift=4)
        darker = cv2.GaussianBlur(core.astype(np.float32) / 255.0, (0, 0), 0.6)[..., None]
        colour = self.palette.lip[None, None, :] * (1 - 0.35 * darker) * np.ones((*mask.shape, 1), np.float32)
        return Layer((int(x0), int(y0), int(x1), int(y1)), colour.astype(np.float32), alpha * 0.9)
