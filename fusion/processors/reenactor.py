"""Weight-free reenactor: the avatar photo deformed by the motion track, one resample per frame.

How a frame is made (all at the avatar's work resolution):
1. The face's own motion (mouth, blinks, eye widening, brows) is a forward displacement field: a
   linear mix of per-channel fields interpolated over the face mesh and smoothed once, in `prepare`.
   It is inverted by a fixed-point step, and exactly (per column) around the mouth and closing lids,
   where it is too steep for fixed-point inversion.
2. The head's rigid 3D motion and the body's sway are one smooth backward map (`fusion.head_motion`)
   that reaches exactly the identity outside the person: no rectangle ever moves on its own.
3. The two maps are composed, so the photo is resampled once (no double blur).
4. The mouth interior and closed lids are painted in the rest pose (`fusion.mouth_interior`) and
   warped by the same head motion, so teeth ride on the skull and tilt with the head.
The dirty rectangle is where the maps differ from the identity, joined with last frame's: the pixels
the previous frame moved are put back when a motion stops or a channel passes through 0. With
`full_frame` the whole image is recomputed instead (for the equivalence test and debugging: both
give the same frame).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from config.processors import ChainRule
from fusion.head_motion import HeadMotion, HeadPose
from fusion.lip_texture import fill_lip_gap
from fusion.motion_basis import (
    JAW_TRAVEL,
    blink_basis,
    brow_basis,
    closure_neck_share,
    eye_wide_basis,
    face_frame,
    mouth_bases,
    neck_jaw,
)
from fusion.mouth_interior import Layer, MouthPainter
from fusion.outside_fill import OutsideFill
from fusion.processors.base import ChainSetup, FrameContext, ProcessorSetup, ProcessorSpec, Rect
from vision import topology as topo
from vision.lip_contour import refine_inner_lips

MOUTH_CHANNELS = ("jaw_open", "lip_width", "lip_round", "lip_closure", "teeth")
LIP_SHADE = 0.82  # lip colour where the stretched lip line is covered: in the shadow of the pucker
COVER_SOFTNESS = 1.2  # px (work image): the cover's edge, soft like a lip's, not a cut
STRETCH_COVER = 0.5  # output rows per source row below which a stretched strip is covered (×2 stretch)


@dataclass(frozen=True)
class ReenactorOptions:
    motion_scale: float = 1.0  # global amplitude of mouth motion (a fallback can lower it)
    head_scale: float = 1.0
    smoothing_ratio: float = 0.035  # Gaussian sigma of the displacement field, × mouth width
    full_frame: bool = False  # recompute the whole image every frame (reference for the dirty-rect path)
    # False when a later processor covers the mouth with real footage (the mouth bank): painting an
    # interior nobody sees would cost ~3 ms a frame.
    paint_interior: bool = True


def _ring(centre: np.ndarray, radii: tuple[float, float], count: int) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack([centre[0] + radii[0] * np.cos(angles), centre[1] + radii[1] * np.sin(angles)], axis=1)


def _box_points(rect: Rect, per_side: int) -> np.ndarray:
    x0, y0, x1, y1 = rect
    xs = np.linspace(x0, x1 - 1, per_side)
    ys = np.linspace(y0, y1 - 1, per_side)
    return np.concatenate(
        [
            np.stack([xs, np.full_like(xs, y0)], 1),
            np.stack([xs, np.full_like(xs, y1 - 1)], 1),
            np.stack([np.full_like(ys, x0), ys], 1),
            np.stack([np.full_like(ys, x1 - 1), ys], 1),
        ]
    )


def _invert_columns(forward_dy: np.ndarray) -> np.ndarray:
    """Source row for every output pixel, inverting y → y + dy(y) exactly in each column.

    The forward map is made monotone (a fold keeps its first sheet). Then, for every output row q,
    the number of source rows landing at or above it is counted for all columns at once (a
    histogram of the rounded-up landing rows, summed down each column): that count is the source
    interval holding q, and q is interpolated inside it. Linear in the number of pixels.
    """
    height, width = forward_dy.shape
    rows = np.arange(height, dtype=np.float32)[:, None]
    forward = np.maximum.accumulate(rows + forward_dy.astype(np.float32), axis=0)
    buckets = np.clip(np.ceil(forward), 0, height).astype(np.int64)
    flat = (buckets + (np.arange(width, dtype=np.int64) * (height + 1))[None, :]).ravel()
    counts = np.bincount(flat, minlength=width * (height + 1)).reshape(width, height + 1)
    landed = np.cumsum(counts, axis=1)[:, :height].T  # source rows with forward <= q, per (q, column)
    lower = np.clip(landed - 1, 0, height - 2)
    f_lo = np.take_along_axis(forward, lower, axis=0)
    f_hi = np.take_along_axis(forward, lower + 1, axis=0)
    t = np.clip((rows - f_lo) / np.maximum(f_hi - f_lo, 1e-6), 0.0, 1.0)
    return (lower + t).astype(np.float32)


def _curve(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def _window(shape: tuple[int, int], rects: list[Rect], fade: float) -> np.ndarray:
    """(h, w, 1) weights: 1 well inside any of `rects`, 0 outside them, a smooth ramp `fade` pixels
    wide along their inner edges (edges on the image border need none: fields are zero there)."""
    height, width = shape
    window = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in rects:
        ys = np.arange(height, dtype=np.float32)[:, None]
        xs = np.arange(width, dtype=np.float32)[None, :]
        distances = [xs - x0 if x0 > 0 else None, x1 - 1 - xs if x1 < width else None,
                     ys - y0 if y0 > 0 else None, y1 - 1 - ys if y1 < height else None]  # fmt: skip
        inside = np.ones(shape, np.float32)
        for distance in distances:
            if distance is not None:
                t = np.clip(distance / fade, 0.0, 1.0)
                inside = inside * (t * t * (3 - 2 * t))
        inside[:y0] = 0
        inside[y1:] = 0
        inside[:, :x0] = 0
        inside[:, x1:] = 0
        window = np.maximum(window, inside)
    return window[..., None]


def _union(a: Rect, b: Rect) -> Rect:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _intersect(a: Rect, b: Rect) -> Rect | None:
    rect = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return rect if rect[2] > rect[0] and rect[3] > rect[1] else None


class DenseFields:
    """Barycentric interpolation of per-vertex vectors over a fixed mesh, restricted to a rectangle."""

    def __init__(self, vertices: np.ndarray, rect: Rect) -> None:
        self.rect = rect
        x0, y0, x1, y1 = rect
        self.shape = (y1 - y0, x1 - x0)
        from scipy.spatial import Delaunay  # here, not at the top: 0.25 s of every `dhf` start otherwise

        mesh = Delaunay(vertices)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
        simplex = mesh.find_simplex(pixels)
        inside = simplex >= 0
        transform = mesh.transform[simplex[inside]]
        partial = np.einsum("nij,nj->ni", transform[:, :2], pixels[inside] - transform[:, 2])
        weights = np.zeros((len(pixels), 3))
        weights[inside] = np.column_stack([partial, 1.0 - partial.sum(axis=1)])
        corners = np.zeros((len(pixels), 3), dtype=np.int64)
        corners[inside] = mesh.simplices[simplex[inside]]
        self.weights, self.corners = weights, corners

    def field(
        self, vectors: np.ndarray, sigma: float, split: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """The dense field, smoothed (triangle edges would otherwise show as creases). With `split`
        (a side mask and a weight), each side of the line between the lips is smoothed on its own
        where the weight is 1 (near the lips), so the jaw can carry the lower lip away from the upper
        one cleanly; away from the lips the ordinary smoothing takes over, continuously."""
        dense = np.einsum("nk,nkc->nc", self.weights, vectors[self.corners]).reshape(*self.shape, 2)
        dense = dense.astype(np.float32)
        if sigma <= 0:
            return dense
        smooth = cv2.GaussianBlur(dense, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
        if split is None:
            return smooth
        side_mask, near = split
        sides = np.zeros_like(dense)
        for side in (side_mask, ~side_mask):
            weight = side.astype(np.float32)
            blurred = cv2.GaussianBlur(dense * weight[..., None], (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
            norm = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
            sides[side] = (blurred / np.maximum(norm, 1e-6)[..., None])[side]
        return sides * near[..., None] + smooth * (1 - near[..., None])


class Reenactor:
    """`Processor` that animates a still avatar photo (or an idle loop's frames) from a motion track."""

    name = "reenactor"

    def __init__(
        self,
        landmarks: np.ndarray,
        options: ReenactorOptions | None = None,
        person: np.ndarray | None = None,
        backdrop: np.ndarray | None = None,
    ) -> None:
        self.landmarks = np.asarray(landmarks, dtype=np.float64)
        self.options = options or ReenactorOptions()
        self.person = person  # the avatar's person mask at work size (vision.segmentation), if any
        # What lies behind the person at work size (a scene behind a cut-out); None: the photo's own
        # backdrop, inpainted (fusion.outside_fill).
        self.backdrop = backdrop

    def requirements(self) -> list[str]:
        return []

    # ----------------------------------------------------------------------------------------------
    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        self.base = base
        self.buffer = base.copy()
        self.touched: Rect | None = None  # where `buffer` may differ from the last base (its region)
        self.moving = False  # the last frame came with its own base (an idle loop)
        height, width = base.shape[:2]
        self.landmarks = refine_inner_lips(base, self.landmarks).astype(np.float64)
        lm = self.landmarks
        frame = face_frame(lm)
        self.face = frame
        self.head = HeadMotion(lm, frame, (height, width), self.person)
        # Beyond the photo's edge the warp shows what the edge continues into (backdrop above the
        # hair), not a mirrored copy of the head; without a matte the border stays mirrored.
        self.outside = None if self.person is None else OutsideFill(base, self.person, self.backdrop)
        self._prepare_local_fields(lm, frame, (height, width))
        self.painter = MouthPainter(base, lm, frame)
        # A photo avatar is warped from the photo with lip texture in its lips' gap: whatever the warp
        # pulls out of the gap is lip, not a smear of teeth or a flat patch (fusion.lip_texture).
        self.source = fill_lip_gap(base, lm, keep_line=self.painter.photo_teeth is None)
        self.opening_mask = self._opening_mask(lm, (height, width))
        self.photo_gap_ratio = self.painter.photo_gap / max(frame.mouth_width, 1e-6)
        self.lid_colours = [self._eyelid_colour(upper) for upper in (topo.RIGHT_EYE_UPPER, topo.LEFT_EYE_UPPER)]
        return base

    def _prepare_local_fields(self, lm: np.ndarray, frame, shape: tuple[int, int]) -> None:
        """Dense fields of the face's own motion over `self.rect`, zero at its edge by construction:
        every helper point on the ring around the face and on the rectangle's border stays still
        (except the skin under the chin, which stretches with the jaw)."""
        height, width = shape
        oval = lm[list(topo.FACE_OVAL), :2]
        centre = oval.mean(0)
        half = (oval.max(0) - oval.min(0)) / 2
        ring = _ring(centre - [0, 0.12 * half[1]], (half[0] * 1.35, half[1] * 1.4), 28)
        sigma = max(0.7, self.options.smoothing_ratio * frame.mouth_width)
        margin = 0.3 * half + 3 * sigma
        x0, y0 = np.maximum(np.floor(ring.min(0) - margin), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(ring.max(0) + margin + [0, 0.3 * half[1]]), [width, height]).astype(int)
        self.rect: Rect = (int(x0), int(y0), int(x1), int(y1))
        ring = np.clip(ring, [x0 + 2, y0 + 2], [x1 - 3, y1 - 3])
        vertices = np.concatenate([lm[:, :2], ring, _box_points(self.rect, 9)])
        n_lm, n_ring = len(lm), len(ring)

        def padded(landmark_vectors: np.ndarray, ring_vectors: np.ndarray | None = None) -> np.ndarray:
            full = np.zeros((len(vertices), 2))
            full[:n_lm] = landmark_vectors
            if ring_vectors is not None:
                full[n_lm : n_lm + n_ring] = ring_vectors
            return full

        fields = DenseFields(vertices, self.rect)
        self.fields: dict[str, np.ndarray] = {}
        neck = neck_jaw(ring, lm, frame)
        neck_share = {"jaw_open": 1.0, "lip_closure": closure_neck_share(lm, frame)}
        lips_split = self._lips_split(sigma)
        self.point_bases: dict[str, np.ndarray] = {}
        for name, vectors in mouth_bases(lm, frame).items():
            self.point_bases[name] = vectors
            ring_vectors = neck * neck_share[name] if name in neck_share else None
            # Closing lips squeeze the photo's opening to nothing: smoothing would leave a sliver.
            smoothing = 0.25 * sigma if name == "lip_closure" else sigma
            self.fields[name] = fields.field(padded(vectors, ring_vectors), smoothing, lips_split)
        self.point_bases.update(blink=blink_basis(lm), eye_wide=eye_wide_basis(lm), brow=brow_basis(lm, frame))
        self.fields["blink"] = fields.field(padded(self.point_bases["blink"]), sigma * 0.6)
        self.fields["eye_wide"] = fields.field(padded(self.point_bases["eye_wide"]), sigma * 0.8)
        self.fields["brow"] = fields.field(padded(self.point_bases["brow"]), sigma * 2.0)
        self.mouth_rect = self._mouth_rect()
        self.eye_rects = [
            self._feature_rect(topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER + topo.RIGHT_BROW),
            self._feature_rect(topo.LEFT_EYE_UPPER + topo.LEFT_EYE_LOWER + topo.LEFT_BROW),
        ]
        self.brow_rect = self._brow_rect()
        # Each field is mixed inside its own rectangle only; fading it to zero at that rectangle's
        # edges means no frame can ever show where a rectangle ends.
        fade = max(4.0, 0.12 * frame.mouth_width)
        mouth_window = _window(self.fields["jaw_open"].shape[:2], [self.mouth_rect], fade)
        for name in MOUTH_CHANNELS:
            self.fields[name] *= mouth_window
        eye_window = _window(self.fields["blink"].shape[:2], self.eye_rects, fade)
        self.fields["blink"] *= eye_window
        self.fields["eye_wide"] *= eye_window
        self.fields["brow"] *= _window(self.fields["brow"].shape[:2], [self.brow_rect], 2 * fade)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.grid_x, self.grid_y = xs, ys

    @staticmethod
    def _opening_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Where the photo's lips part (for closed lips: the line where they meet), out to the outer
        corners (the commissures), a pixel wider: any output pixel the warp samples from here shows
        the inside of the mouth, or pressed lips."""
        corners = lm[list(topo.MOUTH_CORNERS), :2]
        upper = np.concatenate([corners[:1], lm[list(topo.LIPS_INNER_UPPER), :2], corners[1:]])
        lower = np.concatenate([corners[:1], lm[list(topo.LIPS_INNER_LOWER), :2], corners[1:]])
        inner = np.concatenate([upper, lower[::-1]])
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [np.round(inner * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        cv2.polylines(mask, [np.round(inner * 16).astype(np.int32)], True, 255, 2, cv2.LINE_AA, shift=4)
        return mask.astype(np.float32) / 255.0

    def _lips_split(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of `self.rect` below the line between the lips (the side the jaw moves), and how
        near each pixel is to that line between the mouth's corners (1 on it, 0 from 3 σ away):
        only there may the fields jump from one lip to the other."""
        x0, y0, x1, y1 = self.rect
        upper = self.landmarks[list(topo.LIPS_INNER_UPPER), :2]
        lower = self.landmarks[list(topo.LIPS_INNER_LOWER), :2]
        xs = np.arange(x0, x1, dtype=np.float64)
        line = (_curve(upper, xs) + _curve(lower, xs)) / 2
        rows = np.arange(y0, y1, dtype=np.float64)[:, None]
        below = rows > line[None, :]
        # The lips part between the corners only: past them the split must end within a pixel or two,
        # or the line between the lips (stretched by the jaw) would show beside the opening.
        left, right = float(upper[:, 0].min()) + 1.0, float(upper[:, 0].max()) - 1.0
        beyond = 3.0 * sigma * np.clip(np.maximum(left - xs, xs - right) / 2.0, 0.0, 1.0)[None, :]
        distance = np.sqrt((rows - line[None, :]) ** 2 + beyond**2)
        near = 1.0 - np.clip(distance / (3.0 * sigma + 1.0), 0.0, 1.0)
        return below, (near * near * (3 - 2 * near)).astype(np.float32)

    def _feature_rect(self, indices: tuple[int, ...], pad_ratio: float = 0.5) -> Rect:
        x0, y0, x1, y1 = self.rect
        pts = self.landmarks[list(indices), :2]
        pad = pad_ratio * self.face.mouth_width
        lo = np.maximum(np.floor(pts.min(0) - pad), [x0, y0]).astype(int)
        hi = np.minimum(np.ceil(pts.max(0) + pad), [x1, y1]).astype(int)
        return (int(lo[0]) - x0, int(lo[1]) - y0, int(hi[0]) - x0, int(hi[1]) - y0)

    def _mouth_rect(self) -> Rect:
        """Where the mouth channels act: lips, cheeks beside them, chin and jaw down to the rect's edge."""
        width = self.face.mouth_width
        x0, y0, x1, _y1 = self._feature_rect(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER + (topo.CHIN,), 0.55)
        return (
            max(x0 - int(0.6 * width), 0),
            max(y0 - int(0.3 * width), 0),
            min(x1 + int(0.6 * width), self.rect[2] - self.rect[0]),
            self.rect[3] - self.rect[1],
        )

    def _brow_rect(self) -> Rect:
        """Brows, forehead and upper lids (the brow field's support), up to the rect's top."""
        x0, _y0, x1, y1 = self._feature_rect(topo.RIGHT_BROW + topo.LEFT_BROW + topo.RIGHT_EYE_UPPER, 0.9)
        return (x0, 0, x1, y1)

    def _eyelid_colour(self, upper: tuple[int, ...]) -> np.ndarray:
        """Median colour of the eyelid skin just above the upper lid (what covers a closed eye)."""
        lid = self.landmarks[list(upper), :2]
        width = float(np.ptp(lid[:, 0]))
        cx, cy = lid[len(lid) // 2]
        x0, x1 = int(cx - 0.2 * width), int(cx + 0.2 * width) + 1
        y0, y1 = int(cy - 0.3 * width), int(cy - 0.12 * width) + 1
        patch = self.base[max(y0, 0) : max(y1, 1), max(x0, 0) : max(x1, 1)].reshape(-1, 3)
        return np.median(patch, axis=0).astype(np.float32) if len(patch) else np.full(3, 180.0, np.float32)

    # ----------------------------------------------------------------------------------------------
    def effective_motion(self, motion):
        """The motion as applied to this photo, so every photo opens the same for the same track.

        A photo that shows teeth (a smile) has an open mouth at rest: taken as it is, a barely open jaw
        would look as open as a wide one and the lips would never meet between words. So its own gap
        is closed by as much as the track's opening does not use: the visible gap at the mouth's
        centre is always `jaw · (1 − closure) · JAW_TRAVEL · W`, from the shut lips of a P up."""
        photo_gap = self.photo_gap_ratio
        if photo_gap < 0.02:
            return motion
        scale = self.options.motion_scale
        jaw_travel = JAW_TRAVEL * motion.jaw_open * scale
        target = jaw_travel * (1.0 - motion.lip_closure)
        closure = 1.0 - target / max(photo_gap + jaw_travel, 1e-6)
        # Its upper lip already shows the upper teeth: raising it further (the `teeth` channel) would
        # uncover what is above them, which the photo does not show (a dark band under the lip).
        teeth = motion.teeth * (1.0 - float(np.clip((photo_gap - 0.04) / 0.08, 0.0, 1.0)))
        return replace(motion, lip_closure=float(np.clip(max(closure, motion.lip_closure), 0.0, 1.0)), teeth=teeth)

    def head_pose(self, motion) -> HeadPose:
        scale = self.options.head_scale
        return HeadPose(
            yaw=scale * motion.head_yaw,
            pitch=scale * motion.head_pitch,
            roll=scale * motion.head_roll,
            x=scale * getattr(motion, "head_x", 0.0),
            y=scale * getattr(motion, "head_y", 0.0),
            scale=scale * getattr(motion, "head_scale", 0.0),
        )

    def _mix(self, names: tuple[str, ...], weights: list[float], rect: Rect, out: np.ndarray) -> None:
        x0, y0, x1, y1 = rect
        view = out[y0:y1, x0:x1]
        for name, weight in zip(names, weights, strict=True):
            if weight:
                view += weight * self.fields[name][y0:y1, x0:x1]

    def _weights(self, motion) -> dict[str, float]:
        """How much of each field this frame's motion applies."""
        scale = self.options.motion_scale
        eye_wide = getattr(motion, "eye_wide", 0.0) * (1 - motion.blink)
        brow = getattr(motion, "brow", 0.0)
        return {
            "jaw_open": motion.jaw_open * (1.0 - motion.lip_closure) * scale,
            "lip_width": motion.lip_width * scale,
            "lip_round": motion.lip_round * scale,
            "lip_closure": motion.lip_closure,
            "teeth": motion.teeth * scale,
            "blink": motion.blink if motion.blink > 0.01 else 0.0,
            "eye_wide": eye_wide if eye_wide > 0.01 else 0.0,
            "brow": brow if brow > 0.01 else 0.0,
        }

    def local_flow(self, motion) -> np.ndarray:
        """Forward displacement of the face's own motion over `self.rect` (rest pose of the head)."""
        weights = self._weights(motion)
        flow = np.zeros_like(self.fields["jaw_open"])
        self._mix(MOUTH_CHANNELS, [weights[name] for name in MOUTH_CHANNELS], self.mouth_rect, flow)
        eyes = ("blink", "eye_wide")
        if self._eyes_move(weights):
            for rect in self.eye_rects:
                self._mix(eyes, [weights[name] for name in eyes], rect, flow)
        if weights["brow"]:
            self._mix(("brow",), [weights["brow"]], self.brow_rect, flow)
        return flow

    def close(self) -> None:
        self.buffer = None

    def frame_landmarks(self, motion) -> np.ndarray:
        """Every mesh point where it is in this frame's output (the face processors align on these).
        For an idle-loop avatar these are the reference frame's points moved by the track."""
        return self.moved_landmarks(motion, tuple(range(len(self.landmarks))))

    def moved_landmarks(self, motion, indices: tuple[int, ...]) -> np.ndarray:
        """Where the given landmarks land in the output frame (face motion, then head motion)."""
        motion = self.effective_motion(motion)
        return self.head.forward_points(self._moved(indices, motion), self.head_pose(motion))

    def _moved(self, indices: tuple[int, ...], motion) -> np.ndarray:
        """Rest-pose positions of landmarks after the face's own motion, from their own displacement
        bases (exact: sampling the dense fields would mix the two lips where they meet)."""
        moved = self.landmarks[list(indices), :2].copy()
        for name, weight in self._weights(motion).items():
            if weight:
                moved += weight * self.point_bases[name][list(indices)]
        return moved

    def _active_rects(self, motion) -> list[Rect]:
        """The parts of `self.rect` (its own coordinates) where the face's motion is non-zero now."""
        weights = self._weights(motion)
        rects = [self.mouth_rect]
        if self._eyes_move(weights):
            rects += self.eye_rects
        if weights["brow"]:
            rects.append(self.brow_rect)
        return rects

    @staticmethod
    def _eyes_move(weights: dict[str, float]) -> bool:
        return bool(weights["blink"] or weights["eye_wide"])

    def _local_backward(self, flow: np.ndarray, motion) -> tuple[np.ndarray, Rect]:
        """Backward displacement (output → source) of the face's own motion, over the union of the
        active parts (rect coordinates, returned with it); zero everywhere else."""
        rects = self._active_rects(motion)
        ux0, uy0 = min(r[0] for r in rects), min(r[1] for r in rects)
        ux1, uy1 = max(r[2] for r in rects), max(r[3] for r in rects)
        part = flow[uy0:uy1, ux0:ux1]
        rows = np.arange(uy0, uy1, dtype=np.float32)[:, None]
        columns = np.arange(ux0, ux1, dtype=np.float32)[None, :]
        # One fixed-point step inverts the forward field: sample the flow where the pixel came from.
        back = cv2.remap(flow, columns - part[..., 0], rows - part[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        # Around the mouth the jaw field is too steep for that (the teeth would show again under the
        # lower lip, the chin would smear), and so is a closing eyelid: there the vertical map is
        # inverted exactly, per column, over the whole rectangle (an exact part ending on a row would
        # show that row as a seam).
        exact = [self.mouth_rect] + (self.eye_rects if self._eyes_move(self._weights(motion)) else [])
        for rect in exact:
            self._invert_exactly(rect, flow, back, (ux0, uy0))
        return -back, (ux0, uy0, ux1, uy1)

    def _invert_exactly(self, rect: Rect, flow: np.ndarray, back: np.ndarray, origin: tuple[int, int]) -> None:
        """Replace the backward displacement inside `rect` (rect coordinates; `back` starts at
        `origin`) by the exact vertical inverse."""
        rx0, ry0, rx1, ry1 = rect
        ox, oy = origin
        source_rows = _invert_columns(flow[ry0:ry1, rx0:rx1, 1])
        rows = np.arange(ry0, ry1, dtype=np.float32)[:, None]
        back[ry0 - oy : ry1 - oy, rx0 - ox : rx1 - ox, 1] = rows - (source_rows + ry0)
        columns = np.arange(rx0, rx1, dtype=np.float32)[None, :].repeat(ry1 - ry0, axis=0)
        back[ry0 - oy : ry1 - oy, rx0 - ox : rx1 - ox, 0] = cv2.remap(
            flow[..., 0], columns, source_rows + ry0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def _region(self, pose: HeadPose) -> Rect:
        """The output rectangle this frame can change: the face's own motion (always recomputed: it
        holds every local channel, moving or not), and wherever the head's and body's map is not the
        identity (`HeadMotion.changed`: every head channel, the shift carrying the supports with it)."""
        height, width = self.base.shape[:2]
        if self.options.full_frame:
            return (0, 0, width, height)
        moved = self.head.changed(pose)
        return self.rect if moved is None else _union(self.rect, moved)

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        motion = self.effective_motion(context.motion)
        pose = self.head_pose(motion)
        flow = self.local_flow(motion)
        local_back, local_box = self._local_backward(flow, motion)
        region = self._region(pose)
        rx0, ry0, rx1, ry1 = region
        head_map = self.head.backward_map(pose, region)
        # Compose: output → rest pose (head) → photo (the face's own motion, zero outside self.rect).
        # Only where that motion is: the output box of its active part, plus a margin.
        lx0, ly0 = self.rect[0] + local_box[0], self.rect[1] + local_box[1]
        final = head_map.copy()
        active = self._active_output_box(pose, region, local_box)
        if active is not None:
            ax0, ay0, ax1, ay1 = active
            part = head_map[ay0 - ry0 : ay1 - ry0, ax0 - rx0 : ax1 - rx0]
            local_at = cv2.remap(
                local_back, part[..., 0] - lx0, part[..., 1] - ly0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            final[ay0 - ry0 : ay1 - ry0, ax0 - rx0 : ax1 - rx0] += local_at
        # An idle-loop avatar hands in a new base frame each time (same framing as the reference
        # photo the fields were built on); a photo avatar hands in the static base.
        moving = frame is not self.base and frame.shape == self.base.shape
        source = frame if moving else self.source
        warped = cv2.remap(source, final, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if self.outside is not None:
            self.outside.apply(warped, final)
            stray = self.head.stray(pose, region, head_map)
            if stray is not None:
                self.outside.uncover(warped, stray, (rx0, ry0))
        for layer in self._layers(motion, local_back, local_box, moving):
            self._blend(warped, layer, pose, region, head_map)
        dirty = region
        if moving:
            dirty = self._refresh_moving_base(frame, context.base_changed, region)
        elif self.touched is not None and _union(self.touched, region) != region:
            # Last frame moved pixels outside this frame's region (the motion stopped or shrank, a
            # channel passed through 0): the photo comes back there, and downstream must see it.
            tx0, ty0, tx1, ty1 = self.touched
            self.buffer[ty0:ty1, tx0:tx1] = self.base[ty0:ty1, tx0:tx1]
            dirty = _union(self.touched, region)
        self.buffer[ry0:ry1, rx0:rx1] = warped
        self.touched = region  # where the buffer differs from this frame's base
        self.moving = moving
        context.dirty = dirty
        context.stats["moving_base"] = moving
        return self.buffer

    def _refresh_moving_base(self, frame: np.ndarray, changed: Rect | None, region: Rect) -> Rect:
        """Make the buffer equal `frame` outside `region` (which the warp rewrites next); the dirty rect.

        Outside the last region the buffer already holds the last base, so only where the base
        changed (`changed`, from the idle loop's playback) and the last region need copying; an
        unknown change (None) or the first frame copies everything."""
        height, width = frame.shape[:2]
        if changed is None or self.touched is None or not self.moving:
            self.buffer[:] = frame
            return (0, 0, width, height)
        nothing_changed = changed[2] <= changed[0] or changed[3] <= changed[1]
        refresh = self.touched if nothing_changed else _union(changed, self.touched)
        x0, y0, x1, y1 = refresh
        self.buffer[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
        return _union(refresh, region)

    # ----------------------------------------------------------------------------------------------
    def _layers(self, motion, local_back: np.ndarray, local_box: Rect, moving: bool) -> list[Layer]:
        """Painted parts in the rest pose: the mouth interior, closed lids near the end of a blink."""
        shape = self.base.shape[:2]
        upper = self._moved(topo.LIPS_INNER_UPPER, motion)
        lower = self._moved(topo.LIPS_INNER_LOWER, motion)
        layers = []
        mouth = self.painter.paint(upper, lower, motion, shape) if self.options.paint_interior else None
        if mouth is not None:
            layers.append(self._cover_stretched(mouth, local_back, local_box, moving))
        if motion.blink > 0.5:
            layers += self._closed_lids(motion, shape)
        return layers

    def _active_output_box(self, pose: HeadPose, region: Rect, local_box: Rect) -> Rect | None:
        """Where in the output the face's own motion can show this frame (its active rest-pose box
        moved by the head, with a margin)."""
        x0, y0 = self.rect[0] + local_box[0], self.rect[1] + local_box[1]
        x1, y1 = self.rect[0] + local_box[2], self.rect[1] + local_box[3]
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64)
        moved = self.head.forward_points(corners, pose)
        lo = np.floor(moved.min(0)).astype(int) - 4
        hi = np.ceil(moved.max(0)).astype(int) + 5
        return _intersect((int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])), region)

    def _cover_stretched(self, layer: Layer, local_back: np.ndarray, local_box: Rect, moving: bool) -> Layer:
        """Extend the interior over every pixel where the warp samples the photo's lip line or
        opening: stretched lip-line pixels beside the painted outline would read as dark streaks.
        Beyond the painted opening (the corners of a rounded mouth) that is pressed lips: for a photo
        avatar, the lips and skin around the stretched part carried into it (inpainted: stretched,
        each column of lip would be a stripe); for a moving base, whose gap is not filled, the lips'
        colour."""
        bx0, by0, bx1, by1 = layer.box
        lx0, ly0 = self.rect[0] + local_box[0], self.rect[1] + local_box[1]
        columns = np.arange(bx0, bx1, dtype=np.float32)[None, :].repeat(by1 - by0, axis=0)
        rows = np.arange(by0, by1, dtype=np.float32)[:, None].repeat(bx1 - bx0, axis=1)
        back = cv2.remap(local_back, columns - lx0, rows - ly0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        sampled = cv2.remap(self.opening_mask, columns + back[..., 0], rows + back[..., 1], cv2.INTER_LINEAR)
        cover = np.clip((sampled - 0.15) * 1.6, 0.0, 1.0)
        if not moving:
            # Wherever the warp stretches the source vertically (the lips' line torn open beside a
            # narrowed mouth, out to the photo's corners), not only where it samples the opening.
            advance = np.gradient(rows + back[..., 1], axis=0)
            cover = np.maximum(cover, np.clip((STRETCH_COVER - advance) / 0.25, 0.0, 1.0))
        cover = cv2.GaussianBlur(cover, (0, 0), COVER_SOFTNESS)
        alpha = np.maximum(layer.alpha, cover)
        # Beyond the painted opening (the corners of a rounded mouth, narrower than the stretched
        # lip line) the cover is lip, pressed together, not the dark interior.
        beyond = ((alpha - layer.alpha) / np.maximum(alpha, 1e-6))[..., None]
        if moving:
            lips = self.painter.palette.lip * LIP_SHADE
        else:
            stretched = cv2.remap(self.source, columns + back[..., 0], rows + back[..., 1], cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
            holes = ((cover > 0.05) | (layer.alpha > 0.05)).astype(np.uint8)
            lips = cv2.inpaint(stretched, holes, 2, cv2.INPAINT_TELEA).astype(np.float32)
            pressed, where = self._pressed_lips(beyond[..., 0] > 0.3, columns, rows, back)
            lips[where] = pressed[where]
        colour = layer.colour * (1.0 - beyond) + lips * beyond
        return Layer(layer.box, colour.astype(np.float32), alpha)

    def _pressed_lips(self, torn: np.ndarray, columns, rows, back) -> tuple[np.ndarray, np.ndarray]:
        """Beside a rounded mouth the lips are pressed together, yet the jaw has torn their line open
        there (out to the photo's corners): every row of the tear sampled the same few source rows,
        and the photo's dark corner crease stretched ×5-10 read as a vertical "bracket". Here each
        column of the tear samples the source at its own scale around the row its middle came from:
        the lips and the corner's skin as the photo has them, meeting on a line."""
        if not torn.any():
            return np.zeros((*torn.shape, 3), np.float32), torn
        height = torn.shape[0]
        index = np.arange(height)[:, None]
        first = np.where(torn, index, height).min(axis=0)
        last = np.where(torn, index, -1).max(axis=0)
        has = last >= first
        middle = np.where(has, (first + last) // 2, 0)
        picked = np.arange(torn.shape[1])
        source_x = columns[middle, picked] + back[middle, picked, 0]
        source_mid = rows[middle, picked] + back[middle, picked, 1]
        map_x = np.broadcast_to(source_x[None, :], torn.shape).astype(np.float32)
        map_y = (source_mid[None, :] + (index - middle[None, :])).astype(np.float32)
        pressed = cv2.remap(self.source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return pressed.astype(np.float32), torn & has[None, :]

    def _blend(self, warped: np.ndarray, layer: Layer, pose: HeadPose, region: Rect, head_map: np.ndarray) -> None:
        """Warp a rest-pose layer by the head motion into the output and blend it over `warped`."""
        bx0, by0, bx1, by1 = layer.box
        corners = np.array([[bx0, by0], [bx1, by0], [bx0, by1], [bx1, by1]], np.float64)
        moved = self.head.forward_points(corners, pose)
        lo = np.floor(moved.min(0)).astype(int) - 2
        hi = np.ceil(moved.max(0)).astype(int) + 3
        target = _intersect((int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])), region)
        if target is None:
            return
        tx0, ty0, tx1, ty1 = target
        rx0, ry0 = region[:2]
        sample_x = head_map[ty0 - ry0 : ty1 - ry0, tx0 - rx0 : tx1 - rx0, 0] - bx0
        sample_y = head_map[ty0 - ry0 : ty1 - ry0, tx0 - rx0 : tx1 - rx0, 1] - by0
        colour = cv2.remap(layer.colour, sample_x, sample_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.remap(layer.alpha, sample_x, sample_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        alpha = alpha[..., None]
        view = warped[ty0 - ry0 : ty1 - ry0, tx0 - rx0 : tx1 - rx0]
        view[:] = np.clip(view.astype(np.float32) * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)

    def _closed_lids(self, motion, shape: tuple[int, int]) -> list[Layer]:
        """Lid skin and a lash line over what the warp leaves of the eye opening near the end of a
        blink: a mesh warp squeezes the iris but cannot make it disappear."""
        strength = float(np.clip((motion.blink - 0.5) / 0.4, 0.0, 1.0))
        layers = []
        eyes = ((topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER), (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER))
        for (upper_ids, lower_ids), colour in zip(eyes, self.lid_colours, strict=True):
            upper = self._moved(upper_ids, motion)
            lower = self._moved(lower_ids, motion)
            polygon = np.concatenate([upper, lower[::-1]])
            bx0, by0 = np.maximum(np.floor(polygon.min(0)).astype(int) - 4, 0)
            bx1, by1 = np.minimum(np.ceil(polygon.max(0)).astype(int) + 5, [shape[1], shape[0]])
            if bx1 - bx0 < 3 or by1 - by0 < 2:
                continue
            mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
            cv2.fillPoly(mask, [np.round((polygon - [bx0, by0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
            lashes = np.zeros_like(mask)
            line = np.round(((upper + lower) / 2 - [bx0, by0]) * 16).astype(np.int32)
            cv2.polylines(lashes, [line], False, 255, 2, cv2.LINE_AA, 4)
            alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.9) * strength
            lash = cv2.GaussianBlur(lashes.astype(np.float32) / 255.0, (0, 0), 0.6)[..., None]
            paint = colour[None, None, :] * (1 - 0.65 * lash) * np.ones((*mask.shape, 1), np.float32)
            alpha = np.maximum(alpha, lash[..., 0] * 0.6 * strength)
            layers.append(Layer((int(bx0), int(by0), int(bx1), int(by1)), paint.astype(np.float32), alpha))
        return layers


def _create(setup: ChainSetup, options: None) -> Reenactor:
    return Reenactor(setup.work_landmarks, setup.reenactor or ReenactorOptions(), setup.person, setup.backdrop)


PROCESSOR = ProcessorSpec("reenactor", create=_create, rule=ChainRule(first=True, why="it animates the avatar"))
