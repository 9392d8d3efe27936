"""The photo with the gap between its lips filled by the lips' own texture (the source a photo avatar
is warped from).

Why: the warp that opens, closes and rounds the mouth resamples the photo. Wherever it samples the
photo's opening outside the painted interior (a closing mouth squeezes it between the lips, the
corners of a rounded mouth stretch it), the viewer used to see either the photo's teeth and dark
gaps smeared into a line, or a flat lip-coloured patch painted over them: a thin pale line for
closed lips and a flat dark band along the upper lip, which reads as drawn. Here each lip is
mirrored across its inner edge into the gap (the upper lip fills the upper half, the lower lip the
lower half), so anything the warp pulls out of the gap is real lip: its colour, its creases and its
highlights. Where they meet, a soft darker contact line, as between real lips. The painted interior
(`fusion.mouth_interior`) still takes the photo's teeth from the untouched photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision import topology as topo

CONTACT_DARKEN = 0.22  # the line where the lips meet: this much darker at its centre
CONTACT_SIGMA = 0.6  # px: its half width
EDGE = 0.02  # × mouth width: the lips' inner edges are this soft (dark, or mixed with teeth): filled too
COMMISSURE_DEPTH = 0.04  # × mouth width: how far from the corner line its fill is mirrored from
MIRROR_DEPTH = 0.75  # share of a lip's thickness the mirror may reach into (the rest is its outer edge)


def _curve(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def _fold(distance: np.ndarray, period: np.ndarray) -> np.ndarray:
    """A triangle wave: 0 → period → 0 …, so a mirror deeper than the lip turns back into it."""
    period = np.maximum(period, 1.0)
    phase = np.mod(distance, 2 * period)
    return np.where(phase <= period, phase, 2 * period - phase)


def fill_lip_gap(image: np.ndarray, landmarks: np.ndarray, keep_line: bool = False) -> np.ndarray:
    """A copy of `image` whose opening between the inner lip contours (refined ones: see
    `vision.lip_contour`) is lip texture mirrored from each side, with a soft contact line.

    `keep_line`: the photo's lips are closed, and the line where they meet is the photo's own (its
    darkness and thickness are the person's): it stays, only the lips' soft edges either side of it
    and the commissures are filled."""
    inner_upper = landmarks[list(topo.LIPS_INNER_UPPER), :2].astype(np.float64)
    inner_lower = landmarks[list(topo.LIPS_INNER_LOWER), :2].astype(np.float64)
    outer_upper = landmarks[list(topo.LIPS_OUTER_UPPER), :2].astype(np.float64)
    outer_lower = landmarks[list(topo.LIPS_OUTER_LOWER), :2].astype(np.float64)
    corners = landmarks[list(topo.MOUTH_CORNERS), :2].astype(np.float64)
    mouth_width = float(np.linalg.norm(corners[0] - corners[1]))
    # The commissures (from the inner to the outer corners) too: an opening mouth stretches them, and
    # their dark crease stretched reads as a drawn bracket at each corner.
    inner_corners = inner_upper[[0, -1]]
    inner_upper = np.concatenate([corners[:1], inner_upper, corners[1:]])
    inner_lower = np.concatenate([corners[:1], inner_lower, corners[1:]])
    margin = max(1.0, EDGE * mouth_width)
    height, width = image.shape[:2]
    x0 = max(int(np.floor(corners[:, 0].min())) - 2, 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 3, width)
    y0 = max(int(np.floor(min(inner_upper[:, 1].min(), inner_lower[:, 1].min()))) - 3, 0)
    y1 = min(int(np.ceil(max(inner_upper[:, 1].max(), inner_lower[:, 1].max()))) + 4, height)
    if x1 - x0 < 4 or y1 - y0 < 2:
        return image.copy()
    xs = np.arange(x0, x1, dtype=np.float64)
    top, bottom = _curve(inner_upper, xs), _curve(inner_lower, xs)
    bottom = np.maximum(bottom, top)
    least = max(1.0, COMMISSURE_DEPTH * mouth_width)
    upper_thick = np.maximum(top - _curve(outer_upper, xs), least)
    lower_thick = np.maximum(_curve(outer_lower, xs) - bottom, least)
    rows = np.arange(y0, y1, dtype=np.float64)[:, None]
    middle = (top + bottom)[None, :] / 2
    from_upper = top[None, :] - margin - _fold(rows - top[None, :] + margin, MIRROR_DEPTH * upper_thick)
    from_lower = bottom[None, :] + margin + _fold(bottom[None, :] + margin - rows, MIRROR_DEPTH * lower_thick)
    upper_side = np.clip(0.5 - (rows - middle), 0.0, 1.0)  # 1 above the middle, 0 below, a pixel's ramp
    columns = np.broadcast_to(xs[None, :], rows.shape[:1] + xs.shape).astype(np.float32)

    def sample(source_rows: np.ndarray) -> np.ndarray:
        rows32 = source_rows.astype(np.float32)
        return cv2.remap(image, columns, rows32, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)

    side = upper_side[..., None]
    fill = sample(from_upper) * side + sample(from_lower) * (1 - side)
    # The contact line fades out over the commissures (towards the outer corners it is skin).
    outside = np.maximum(inner_corners[0, 0] - xs, xs - inner_corners[1, 0])
    reach = np.maximum(np.abs(corners[:, 0] - inner_corners[:, 0]).max(), 1.0)
    line = CONTACT_DARKEN * np.clip(1.0 - outside / reach, 0.0, 1.0)[None, :]
    contact = 1.0 - line * np.exp(-0.5 * ((rows - middle) / CONTACT_SIGMA) ** 2)
    fill *= contact[..., None]
    # Where: the opening, a pixel wider (its edge pixels mix lip and teeth), feathered.
    polygon = np.concatenate([inner_upper, inner_lower[::-1]]) - [x0, y0]
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    thickness = 2 * int(np.ceil(margin)) + 1
    cv2.polylines(mask, [np.round(polygon * 16).astype(np.int32)], True, 255, thickness, cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.5)
    if keep_line:
        between_corners = line / CONTACT_DARKEN  # 1 between the inner corners, 0 at the outer ones
        alpha *= 1.0 - between_corners * np.exp(-0.5 * ((rows - middle) / margin) ** 2)
    alpha = np.clip(alpha, 0.0, 1.0)[..., None]
    out = image.copy()
    box = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(box * (1 - alpha) + fill * alpha, 0, 255).astype(np.uint8)
    return out
