"""Weight-free reenactor: landmark-mesh warp of the avatar photo plus a synthesized mouth interior.

How a frame is made (all at the avatar's work resolution, inside the head region only):
1. Per-landmark displacements are a linear mix of bases (jaw, lip width, rounding, closure, teeth,
   blink, head yaw/pitch/roll) whose dense fields were interpolated over a Delaunay mesh of the
   landmarks and smoothed once, in `prepare`; a frame only sums weighted fields.
2. The forward field is inverted with one fixed-point step and applied with `cv2.remap`.
3. Where the lips part, a mouth interior is painted: dark cavity with depth shading, the upper teeth
   fixed to the upper jaw (revealed as the lower lip slides down), lower teeth and tongue when the
   mouth opens wide, a soft shadow under the upper lip, feathered into the lips.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from scipy.spatial import Delaunay

from fusion import topology as topo
from fusion.motion_basis import blink_basis, face_frame, head_bases, mouth_bases, neck_jaw
from fusion.processors.base import FrameContext, Rect

MOUTH_CHANNELS = ("jaw_open", "lip_width", "lip_round", "lip_closure", "teeth")
HEAD_CHANNELS = ("head_yaw", "head_pitch", "head_roll")


@dataclass(frozen=True)
class ReenactorOptions:
    motion_scale: float = 1.0  # global amplitude of mouth motion (a fallback can lower it)
    head_scale: float = 1.0
    smoothing_ratio: float = 0.035  # Gaussian sigma of the displacement field, × mouth width
    photo_gap_open_at: float = 0.6  # mouth gap (track units) at which a photo's own lip gap is fully shown


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

    The forward map is made monotone (a fold keeps its first sheet), then all columns are inverted
    with one `searchsorted` by offsetting each column into its own value range.
    """
    height, width = forward_dy.shape
    rows = np.arange(height, dtype=np.float64)[:, None]
    forward = np.maximum.accumulate(rows + forward_dy, axis=0)
    stride = float(4 * height + 1024)
    offsets = np.arange(width, dtype=np.float64)[None, :] * stride
    keys = (forward + offsets).T.ravel()
    queries = (rows + offsets).T.ravel()
    index = np.searchsorted(keys, queries)
    column = np.repeat(np.arange(width), height)
    within = np.clip(index - column * height, 1, height - 1)
    upper = column * height + within
    lower = upper - 1
    span = np.maximum(keys[upper] - keys[lower], 1e-6)
    t = np.clip((queries - keys[lower]) / span, 0.0, 1.0)
    source = (within - 1) + t
    return source.reshape(width, height).T.astype(np.float32)


class DenseFields:
    """Barycentric interpolation of per-vertex vectors over a fixed mesh, restricted to a rectangle."""

    def __init__(self, vertices: np.ndarray, rect: Rect) -> None:
        self.rect = rect
        x0, y0, x1, y1 = rect
        self.shape = (y1 - y0, x1 - x0)
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

    def field(self, vectors: np.ndarray, sigma: float) -> np.ndarray:
        dense = np.einsum("nk,nkc->nc", self.weights, vectors[self.corners]).reshape(*self.shape, 2)
        dense = dense.astype(np.float32)
        if sigma > 0:
            dense = cv2.GaussianBlur(dense, (0, 0), sigma)
        return dense


class Reenactor:
    """`Processor` that animates a still avatar photo from a motion track."""

    name = "reenactor"

    def __init__(self, landmarks: np.ndarray, options: ReenactorOptions | None = None) -> None:
        self.landmarks = np.asarray(landmarks, dtype=np.float64)
        self.options = options or ReenactorOptions()

    def requirements(self) -> list[str]:
        return []

    # ----------------------------------------------------------------------------------------------
    def prepare(self, base: np.ndarray) -> np.ndarray:
        self.base = base
        self.buffer = base.copy()
        height, width = base.shape[:2]
        lm = self.landmarks
        frame = face_frame(lm)
        self.face = frame
        oval = lm[list(topo.FACE_OVAL), :2]
        centre = oval.mean(0)
        half = (oval.max(0) - oval.min(0)) / 2
        head_ring = _ring(centre - [0, 0.12 * half[1]], (half[0] * 1.45, half[1] * 1.45), 28)
        x0, y0 = np.maximum(np.floor(head_ring.min(0) - 0.25 * half), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(head_ring.max(0) + [0.25, 0.6] * half), [width, height]).astype(int)
        self.rect: Rect = (int(x0), int(y0), int(x1), int(y1))
        head_ring = np.clip(head_ring, [x0 + 2, y0 + 2], [x1 - 3, y1 - 3])
        border = _box_points(self.rect, 9)
        vertices = np.concatenate([lm[:, :2], head_ring, border])
        n_lm, n_ring = len(lm), len(head_ring)

        def padded(landmark_vectors: np.ndarray, ring_vectors: np.ndarray | None = None) -> np.ndarray:
            full = np.zeros((len(vertices), 2))
            full[:n_lm] = landmark_vectors
            if ring_vectors is not None:
                full[n_lm : n_lm + n_ring] = ring_vectors
            return full

        fields = DenseFields(vertices, self.rect)
        sigma = max(0.7, self.options.smoothing_ratio * frame.mouth_width)
        self.fields: dict[str, np.ndarray] = {}
        for name, vectors in mouth_bases(lm, frame).items():
            ring = neck_jaw(head_ring, lm, frame) if name == "jaw_open" else None
            self.fields[name] = fields.field(padded(vectors, ring), sigma)
        self.fields["blink"] = fields.field(padded(blink_basis(lm)), sigma * 0.6)
        pivot = lm[topo.CHIN, :2] + frame.ey * frame.interocular * 0.9
        depth = np.concatenate([lm[:, 2], np.zeros(n_ring)])
        ring_and_lm = np.concatenate([lm[:, :2], head_ring])
        for name, vectors in head_bases(ring_and_lm, depth, frame, pivot).items():
            self.fields[name] = fields.field(padded(vectors[:n_lm], vectors[n_lm:]), sigma * 2)
        self.mouth_rect = self._mouth_rect()
        self.eye_rects = [
            self._feature_rect(topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER + topo.RIGHT_BROW),
            self._feature_rect(topo.LEFT_EYE_UPPER + topo.LEFT_EYE_LOWER + topo.LEFT_BROW),
        ]
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.grid_x, self.grid_y = xs, ys
        self._palette()
        inner = np.concatenate([lm[list(topo.LIPS_INNER_UPPER), :2], lm[list(topo.LIPS_INNER_LOWER), :2][::-1]])
        photo_gap = float(np.max(lm[list(topo.LIPS_INNER_LOWER), 1] - lm[list(topo.LIPS_INNER_UPPER), 1]))
        self.photo_teeth = inner if photo_gap > 0.06 * frame.mouth_width else None
        self.photo_gap_ratio = photo_gap / max(frame.mouth_width, 1e-6)
        opening_mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(opening_mask, [np.round((inner - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        self.opening_mask = opening_mask.astype(np.float32) / 255.0
        centre = lm[list(topo.LIPS_INNER_UPPER + topo.LIPS_INNER_LOWER), :2].mean(0) - [x0, y0]
        self.mouth_centre = (round(centre[0]), round(centre[1]))
        return base

    def _invert_exactly(self, rect: Rect, flow: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> None:
        """Replace the sampling maps inside `rect` (ROI coordinates) by the exact vertical inverse."""
        x0, y0 = self.rect[:2]
        rx0, ry0, rx1, ry1 = rect
        exact_rows = _invert_columns(flow[ry0:ry1, rx0:rx1, 1])
        map_y[ry0:ry1, rx0:rx1] = exact_rows + (y0 + ry0)
        sample_x = self.grid_x[ry0:ry1, rx0:rx1] - x0
        back_x = cv2.remap(flow[..., 0], sample_x, exact_rows + ry0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        map_x[ry0:ry1, rx0:rx1] = self.grid_x[ry0:ry1, rx0:rx1] - back_x

    def _feature_rect(self, indices: tuple[int, ...], pad_ratio: float = 0.5) -> Rect:
        x0, y0, x1, y1 = self.rect
        pts = self.landmarks[list(indices), :2]
        pad = pad_ratio * self.face.mouth_width
        lo = np.maximum(np.floor(pts.min(0) - pad), [x0, y0]).astype(int)
        hi = np.minimum(np.ceil(pts.max(0) + pad), [x1, y1]).astype(int)
        return (int(lo[0]) - x0, int(lo[1]) - y0, int(hi[0]) - x0, int(hi[1]) - y0)

    def _mouth_rect(self) -> Rect:
        x0, y0, x1, _y1 = self._feature_rect(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER + (topo.CHIN,), 0.45)
        return (
            max(x0 - int(0.4 * self.face.mouth_width), 0),
            y0,
            min(x1 + int(0.4 * self.face.mouth_width), self.rect[2] - self.rect[0]),
            self.rect[3] - self.rect[1],
        )

    def _palette(self) -> None:
        """Interior colours derived from the photo: lips for the cavity and tongue, face brightness for teeth."""
        lips = self.landmarks[list(topo.LIPS_OUTER_LOWER), :2].astype(np.int32)
        mask = np.zeros(self.base.shape[:2], np.uint8)
        cv2.fillPoly(mask, [lips], 255)
        lip_colour = np.array(cv2.mean(self.base, mask=mask)[:3]) if mask.any() else np.array([90, 90, 160])
        skin_mask = np.zeros_like(mask)
        cv2.fillPoly(skin_mask, [self.landmarks[list(topo.FACE_OVAL), :2].astype(np.int32)], 255)
        brightness = float(np.mean(cv2.mean(self.base, mask=skin_mask)[:3])) / 170.0
        self.lip_colour = lip_colour.astype(np.float32)
        self.cavity_colour = lip_colour * 0.22 + np.array([8, 6, 12])
        self.tongue_colour = lip_colour * 0.72 + np.array([0, 0, 10])
        self.teeth_colour = np.clip(np.array([206, 214, 222]) * np.clip(brightness, 0.75, 1.05), 0, 255)
        self.lid_colours = [self._eyelid_colour(upper) for upper in (topo.RIGHT_EYE_UPPER, topo.LEFT_EYE_UPPER)]

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
    def _mix(self, names: tuple[str, ...], weights: list[float], rect: Rect | None, out: np.ndarray) -> None:
        if rect is None:
            for name, weight in zip(names, weights, strict=True):
                if weight:
                    out += weight * self.fields[name]
            return
        x0, y0, x1, y1 = rect
        view = out[y0:y1, x0:x1]
        for name, weight in zip(names, weights, strict=True):
            if weight:
                view += weight * self.fields[name][y0:y1, x0:x1]

    def displacement(self, motion) -> np.ndarray:
        """Forward displacement field over the head rectangle for one frame of motion."""
        opts = self.options
        flow = np.zeros_like(self.fields["jaw_open"])
        head = [opts.head_scale * getattr(motion, name) for name in HEAD_CHANNELS]
        self._mix(HEAD_CHANNELS, head, None, flow)
        gap = motion.jaw_open * (1.0 - motion.lip_closure)
        mouth = [
            gap * opts.motion_scale,
            motion.lip_width * opts.motion_scale,
            motion.lip_round * opts.motion_scale,
            motion.lip_closure,
            motion.teeth * opts.motion_scale,
        ]
        self._mix(MOUTH_CHANNELS, mouth, self.mouth_rect, flow)
        if motion.blink > 0.01:
            for rect in self.eye_rects:
                self._mix(("blink",), [motion.blink], rect, flow)
        return flow

    def effective_motion(self, motion):
        """The motion as applied to this photo: its own lip gap closes as the jaw closes.

        A photo that shows teeth (a smile) has an open mouth at rest; taken as-is, a barely open jaw
        would look as open as a wide one and the lips would never read as shut between words. So the
        photo's gap is closed in proportion to how little the track opens the mouth (fully shut at
        gap 0, fully the photo's own at `photo_gap_open_at`). The visible gap jaw·(1 − closure) is kept.
        """
        reference = self.options.photo_gap_open_at
        if self.photo_gap_ratio < 0.02 or reference <= 0:
            return motion
        gap = motion.jaw_open * (1.0 - motion.lip_closure)
        closure = 1.0 - min(gap / reference, 1.0)
        if closure <= motion.lip_closure:
            return motion
        return replace(motion, jaw_open=reference, lip_closure=closure)

    def moved_landmarks(self, motion, indices: tuple[int, ...]) -> np.ndarray:
        """Where the given landmarks land in this frame (sampled from the forward field)."""
        flow = self.displacement(self.effective_motion(motion))
        x0, y0 = self.rect[:2]
        pts = self.landmarks[list(indices), :2]
        xi = np.clip(np.round(pts[:, 0] - x0).astype(int), 0, flow.shape[1] - 1)
        yi = np.clip(np.round(pts[:, 1] - y0).astype(int), 0, flow.shape[0] - 1)
        return pts + flow[yi, xi]

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        motion = self.effective_motion(context.motion)
        flow = self.displacement(motion)
        x0, y0, x1, y1 = self.rect
        map_x = self.grid_x - flow[..., 0]
        map_y = self.grid_y - flow[..., 1]
        # One fixed-point step inverts the forward field: sample the flow where the pixel came from.
        local_x, local_y = map_x - x0, map_y - y0
        flow_back = cv2.remap(flow, local_x, local_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        map_x = self.grid_x - flow_back[..., 0]
        map_y = self.grid_y - flow_back[..., 1]
        # Around the mouth the jaw field is too steep for fixed-point inversion (it would show the
        # teeth again under the lower lip), and so is a closing eyelid (the iris would stay visible
        # through a blink); there the vertical map is inverted exactly, per column.
        self._invert_exactly(self.mouth_rect, flow, map_x, map_y)
        if motion.blink > 0.01:
            for rect in self.eye_rects:
                self._invert_exactly(rect, flow, map_x, map_y)
        mx0, my0, mx1, my1 = self.mouth_rect
        # An idle-loop avatar hands in a new base frame each time (same framing as the reference
        # photo the fields were built on); a photo avatar hands in the static base.
        moving = frame is not self.base and frame.shape == self.base.shape
        source = frame if moving else self.base
        warped = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        # Output pixels that sample the photo's own mouth opening are stretched teeth: mark them.
        opening = np.zeros(warped.shape[:2], np.float32)
        opening[my0:my1, mx0:mx1] = cv2.remap(
            self.opening_mask, map_x[my0:my1, mx0:mx1] - x0, map_y[my0:my1, mx0:mx1] - y0, cv2.INTER_LINEAR
        )
        self._paint_mouth(warped, flow, motion, opening)
        if motion.blink > 0.5:
            self._paint_closed_eyes(warped, flow, motion.blink)
        if moving:
            self.buffer[:] = frame
        self.buffer[y0:y1, x0:x1] = warped
        context.dirty = (0, 0, self.base.shape[1], self.base.shape[0]) if moving else self.rect
        return self.buffer

    # ----------------------------------------------------------------------------------------------
    def _paint_mouth(self, roi: np.ndarray, flow: np.ndarray, motion, stretched: np.ndarray) -> None:
        """Paint the opening between the moved inner lips (coordinates inside the ROI).

        When the photo shows teeth they are reused, fixed to the upper jaw (they follow the head,
        not the lips); otherwise an upper-teeth band is synthesized. Below them: dark cavity with
        depth shading, the tongue and, when the jaw drops far, a hint of the lower teeth.
        """
        x0, y0 = self.rect[:2]
        upper = self._moved(topo.LIPS_INNER_UPPER, flow) - [x0, y0]
        lower = self._moved(topo.LIPS_INNER_LOWER, flow) - [x0, y0]
        opening = float(np.max(lower[:, 1] - upper[:, 1]))
        width = self.face.mouth_width
        if motion.jaw_open * (1 - motion.lip_closure) < 0.06 and motion.lip_closure > 0.5:
            self._paint_closed_lips(roi, upper, lower, motion.lip_closure)
            return
        if opening < 0.03 * width or (motion.jaw_open * (1 - motion.lip_closure) < 0.05 and motion.teeth < 0.3):
            return  # at rest the photo's own mouth is the best mouth
        polygon = np.concatenate([upper, lower[::-1]])
        rows = np.flatnonzero(stretched.max(axis=1) > 0.02)
        low = polygon.min(0)
        high = polygon.max(0) if rows.size == 0 else np.maximum(polygon.max(0), [polygon[:, 0].max(), rows[-1]])
        bx0, by0 = np.maximum(np.floor(low).astype(int) - 2, 0)
        bx1, by1 = np.minimum(np.ceil(high).astype(int) + 3, [roi.shape[1], roi.shape[0]])
        if bx1 - bx0 < 3 or by1 - by0 < 2:
            return
        scale = 3  # supersample the small mouth box for clean, anti-aliased edges
        h, w = (by1 - by0) * scale, (bx1 - bx0) * scale
        local = (polygon - [bx0, by0]) * scale
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(local * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        n = len(upper)
        upper_y = np.interp(xs[0], local[:n, 0], local[:n, 1])[None, :]
        lower_y = np.interp(xs[0], local[n:, 0][::-1], local[n:, 1][::-1])[None, :]
        cx = float(local[:, 0].mean())
        half_w = max(1.0, float(np.ptp(local[:, 0])) / 2)
        across = np.clip(np.abs(xs - cx) / half_w, 0, 1)
        span = np.maximum(lower_y - upper_y, 1.0)
        depth = np.clip((ys - upper_y) / span, 0, 1)
        shade = (0.5 + 0.5 * (1 - across**2)) * (0.8 + 0.2 * np.sin(np.pi * depth))
        colour = self.cavity_colour.astype(np.float32) * shade[..., None]
        tongue = np.clip((depth - 0.62) / 0.2, 0, 1) * (1 - across**2) * np.clip(opening / (0.3 * width), 0, 1)
        colour = colour * (1 - 0.85 * tongue[..., None]) + (self.tongue_colour * shade[..., None]) * (
            0.85 * tongue[..., None]
        )
        wide = float(np.clip((opening - 0.3 * width) / (0.25 * width), 0, 1))
        if wide > 0:
            band = np.clip(1 - (lower_y - ys) / (0.06 * width * scale), 0, 1) * (1 - across**2) * wide * 0.6
            colour = colour * (1 - band[..., None]) + (self.teeth_colour * 0.72) * band[..., None]
        if self.photo_teeth is not None:
            dx, dy = self._head_shift(motion)
            teeth_px, teeth_alpha = self._photo_teeth_patch(bx0 + x0 - dx, by0 + y0 - dy, w, h, scale)
        else:
            teeth_h = 0.13 * width * scale * (0.85 + 0.25 * motion.teeth)
            limit = teeth_h * (1 - 0.3 * across**2)
            teeth_alpha = np.clip((limit - (ys - upper_y)) / (0.35 * scale), 0, 1)
            teeth_shade = (0.72 + 0.28 * (1 - across**2.5)) * (0.9 + 0.1 * np.clip((ys - upper_y) / teeth_h, 0, 1))
            teeth_px = self.teeth_colour * teeth_shade[..., None]
        colour = colour * (1 - teeth_alpha[..., None]) + teeth_px * teeth_alpha[..., None]
        shadow = np.clip(1 - (ys - upper_y) / (0.045 * width * scale + 1), 0, 1) * 0.3
        colour *= (1 - shadow)[..., None]
        small = cv2.resize(colour, (bx1 - bx0, by1 - by0), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(mask, (bx1 - bx0, by1 - by0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        alpha = np.maximum(alpha, np.clip(stretched[by0:by1, bx0:bx1] * 1.3, 0, 1))[..., None]
        region = roi[by0:by1, bx0:bx1].astype(np.float32)
        roi[by0:by1, bx0:bx1] = np.clip(region * (1 - alpha) + small * alpha, 0, 255).astype(np.uint8)

    def _paint_closed_lips(self, roi: np.ndarray, upper: np.ndarray, lower: np.ndarray, closure: float) -> None:
        """Shut lips: cover what is left between the inner lips with lip colour and a faint contact line."""
        polygon = np.concatenate([upper, lower[::-1]])
        centre_line = (upper + lower) / 2
        pad = int(np.ceil(0.05 * self.face.mouth_width)) + 2
        bx0, by0 = np.maximum(np.floor(np.minimum(polygon.min(0), centre_line.min(0))).astype(int) - pad, 0)
        bx1, by1 = np.minimum(np.ceil(polygon.max(0)).astype(int) + pad, [roi.shape[1], roi.shape[0]])
        if bx1 - bx0 < 3 or by1 - by0 < 2:
            return
        mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        cv2.fillPoly(mask, [np.round((polygon - [bx0, by0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        cv2.polylines(mask, [np.round((centre_line - [bx0, by0]) * 16).astype(np.int32)], False, 255, 2, cv2.LINE_AA, 4)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.8)[..., None] * min(1.0, closure)
        line = np.zeros_like(mask)
        cv2.polylines(line, [np.round((centre_line - [bx0, by0]) * 16).astype(np.int32)], False, 255, 1, cv2.LINE_AA, 4)
        line_alpha = cv2.GaussianBlur(line.astype(np.float32) / 255.0, (0, 0), 0.7)[..., None]
        colour = self.lip_colour * (1 - 0.35 * line_alpha)
        region = roi[by0:by1, bx0:bx1].astype(np.float32)
        roi[by0:by1, bx0:bx1] = np.clip(region * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)

    def _paint_closed_eyes(self, roi: np.ndarray, flow: np.ndarray, blink: float) -> None:
        """Cover what the warp leaves of the eye opening near the end of a blink with lid skin and a
        lash line: a mesh warp squeezes the iris but cannot make it disappear."""
        x0, y0 = self.rect[:2]
        strength = float(np.clip((blink - 0.5) / 0.4, 0.0, 1.0))
        eyes = ((topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER), (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER))
        for (upper_ids, lower_ids), colour in zip(eyes, self.lid_colours, strict=True):
            upper = self._moved(upper_ids, flow) - [x0, y0]
            lower = self._moved(lower_ids, flow) - [x0, y0]
            polygon = np.concatenate([upper, lower[::-1]])
            pad = 4
            bx0, by0 = np.maximum(np.floor(polygon.min(0)).astype(int) - pad, 0)
            bx1, by1 = np.minimum(np.ceil(polygon.max(0)).astype(int) + pad, [roi.shape[1], roi.shape[0]])
            if bx1 - bx0 < 3 or by1 - by0 < 2:
                continue
            local = np.round((polygon - [bx0, by0]) * 16).astype(np.int32)
            mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
            cv2.fillPoly(mask, [local], 255, cv2.LINE_AA, shift=4)
            closed_line = np.round(((upper + lower) / 2 - [bx0, by0]) * 16).astype(np.int32)
            lashes = np.zeros_like(mask)
            cv2.polylines(lashes, [closed_line], False, 255, 2, cv2.LINE_AA, 4)
            alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.9)[..., None] * strength
            lash_alpha = cv2.GaussianBlur(lashes.astype(np.float32) / 255.0, (0, 0), 0.6)[..., None] * strength
            region = roi[by0:by1, bx0:bx1].astype(np.float32)
            region = region * (1 - alpha) + colour * alpha
            region = region * (1 - 0.6 * lash_alpha) + (colour * 0.35) * (0.6 * lash_alpha)
            roi[by0:by1, bx0:bx1] = np.clip(region, 0, 255).astype(np.uint8)

    def _head_shift(self, motion) -> tuple[float, float]:
        """Displacement of the mouth centre caused by head motion alone (teeth ride on the skull)."""
        cx, cy = self.mouth_centre
        dx = dy = 0.0
        for name in HEAD_CHANNELS:
            vector = self.fields[name][cy, cx] * getattr(motion, name) * self.options.head_scale
            dx, dy = dx + float(vector[0]), dy + float(vector[1])
        return dx, dy

    def _photo_teeth_patch(self, left: float, top: float, w: int, h: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
        """The photo's own mouth opening (teeth) resampled into the supersampled box at (left, top)."""
        affine = np.array([[1 / scale, 0, left], [0, 1 / scale, top]], dtype=np.float64)
        pixels = cv2.warpAffine(
            self.base, affine, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        ).astype(np.float32)
        local = (self.photo_teeth - [left, top]) * scale
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(local * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        return pixels, mask.astype(np.float32) / 255.0

    def _moved(self, indices: tuple[int, ...], flow: np.ndarray) -> np.ndarray:
        x0, y0 = self.rect[:2]
        pts = self.landmarks[list(indices), :2]
        sample_x = (pts[:, 0] - x0).astype(np.float32).reshape(1, -1)
        sample_y = (pts[:, 1] - y0).astype(np.float32).reshape(1, -1)
        moved = cv2.remap(flow, sample_x, sample_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 2)
        return pts + moved
