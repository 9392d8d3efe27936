"""Where a photo's lips really part: the inner-lip contour refined from the pixels.

Why: the face mesh places the inner lip contour from the face's shape, not from what is between the
lips. On a smiling photo its lower inner lip runs across the middle of the teeth, so a warp that
trusts it stretches the lower teeth as if they were lip, and closing the lips leaves teeth between
them. Here the pixels between the outer lip contours are split into lip tissue (reddest) and the
opening (teeth: bright and pale; gaps: dark), and the inner contour is moved to the opening's edges.
A photo with closed lips has no opening and keeps the mesh's contour.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision import topology as topo

MIN_OPENING_SHARE = 0.04  # of the mouth width: less than this is no visible opening
TEETH_BRIGHTER = 8.0  # teeth are paler and brighter (L*) than the lips around them
TEETH_REDNESS = 0.4  # and at most this share of the lips' redness above neutral
MIN_TEETH_SHARE = 0.08  # of the pixels between the outer lips: fewer teeth than this is a closed mouth
CLOSED_HALF_GAP = 0.6  # pixels
MIN_LIP_SHARE = 0.35  # a refined inner contour leaves each lip at least this share of its mesh thickness


def _curve(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def opening_mask(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Boolean mask (in a box around the lips, origin returned) of pixels that are not lip tissue."""
    lips = landmarks[list(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER), :2]
    x0, y0 = np.maximum(np.floor(lips.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(lips.max(0)).astype(int) + 3, [image.shape[1], image.shape[0]])
    box = image[y0:y1, x0:x1]
    lab = cv2.cvtColor(box, cv2.COLOR_BGR2LAB).astype(np.float32)
    inside = np.zeros(box.shape[:2], np.uint8)
    outer = np.concatenate(
        [landmarks[list(topo.LIPS_OUTER_UPPER), :2], landmarks[list(topo.LIPS_OUTER_LOWER), :2][::-1]]
    )
    cv2.fillPoly(inside, [np.round(outer - [x0, y0]).astype(np.int32)], 1)
    values = lab[inside > 0]
    if len(values) < 30:
        return np.zeros(box.shape[:2], bool), (int(x0), int(y0))
    # Lip tissue is the reddest part of the mouth (a* high); teeth are pale (a* low, L high), gaps dark.
    redness, lightness = lab[..., 1], lab[..., 0]
    lip_red = float(np.percentile(values[:, 1], 85))
    pale_red = float(np.percentile(values[:, 1], 10))
    dark = float(np.percentile(values[:, 0], 5))
    lip_light = float(np.median(values[:, 0]))
    # Teeth are nearly neutral in colour (a* close to 128 in OpenCV's 8-bit Lab); a lip's pale
    # highlight stays clearly red.
    neutral = 128.0 + TEETH_REDNESS * max(lip_red - 128.0, 1.0)
    teeth = (redness < min(neutral, (lip_red + pale_red) / 2)) & (lightness > lip_light + TEETH_BRIGHTER)
    if (teeth & (inside > 0)).sum() < MIN_TEETH_SHARE * len(values):
        return np.zeros(box.shape[:2], bool), (int(x0), int(y0))  # no teeth: closed lips (a dark line)
    gap = lightness < dark + 0.35 * (lip_light - dark)
    mask = ((teeth | gap) & (inside > 0)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return mask > 0, (int(x0), int(y0))


def _closed(landmarks: np.ndarray) -> np.ndarray:
    """The inner lip contours moved onto their middle line: lips that meet, as a closed photo shows."""
    closed = np.array(landmarks, dtype=np.float32, copy=True)
    upper, lower = list(topo.LIPS_INNER_UPPER), list(topo.LIPS_INNER_LOWER)
    middle = (closed[upper, 1] + _curve(closed[lower, :2], closed[upper, 0])) / 2
    # Half a pixel either side of the line: the two lips stay separate points of the face mesh, so
    # the jaw can carry the lower one away from the upper one.
    closed[upper[1:-1], 1] = middle[1:-1] - CLOSED_HALF_GAP
    line = np.column_stack([closed[upper, 0], middle])
    closed[lower[1:-1], 1] = _curve(line, closed[lower[1:-1], 0]) + CLOSED_HALF_GAP
    return closed


def refine_inner_lips(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Landmarks with the inner lip contour moved onto the edges of the photo's visible opening; for
    a photo whose lips are closed (no teeth between them), onto the line where they meet.

    An opening only ever widens the mesh's contour (the mesh errs by cutting through the teeth, not
    by enclosing lip tissue), and each lip keeps at least `MIN_LIP_SHARE` of its mesh thickness."""
    refined = np.array(landmarks, dtype=np.float32, copy=True)
    width = float(np.linalg.norm(landmarks[topo.MOUTH_CORNERS[0], :2] - landmarks[topo.MOUTH_CORNERS[1], :2]))
    mask, (x0, y0) = opening_mask(image, landmarks)
    if not mask.any():
        return _closed(landmarks)
    inner_upper, inner_lower = landmarks[list(topo.LIPS_INNER_UPPER), :2], landmarks[list(topo.LIPS_INNER_LOWER), :2]
    outer_upper, outer_lower = landmarks[list(topo.LIPS_OUTER_UPPER), :2], landmarks[list(topo.LIPS_OUTER_LOWER), :2]
    columns = np.arange(mask.shape[1]) + x0
    lo_x, hi_x = inner_upper[:, 0].min(), inner_upper[:, 0].max()
    mesh_top, mesh_bottom = _curve(inner_upper, columns), _curve(inner_lower, columns)
    top_limit = _curve(outer_upper, columns) + MIN_LIP_SHARE * (mesh_top - _curve(outer_upper, columns))
    bottom_limit = _curve(outer_lower, columns) - MIN_LIP_SHARE * (_curve(outer_lower, columns) - mesh_bottom)
    rows = (np.arange(mask.shape[0]) + y0)[:, None]
    allowed = (rows >= top_limit[None, :]) & (rows <= bottom_limit[None, :]) & ((columns >= lo_x) & (columns <= hi_x))
    mask = mask & allowed
    # Keep the part of the opening connected to what the mesh already calls the opening.
    seed = (rows >= mesh_top[None, :]) & (rows <= mesh_bottom[None, :]) & mask
    _count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[seed])
    mask = np.isin(labels, keep[keep > 0])
    has = mask.any(axis=0)
    if has.sum() < 3:
        return refined
    tops = np.where(has, np.argmax(mask, axis=0) + y0, np.inf)
    bottoms = np.where(has, mask.shape[0] - np.argmax(mask[::-1], axis=0) + y0, -np.inf)
    top = np.minimum(mesh_top, tops)
    bottom = np.maximum(mesh_bottom, bottoms)
    if float(np.max(bottom - top)) < MIN_OPENING_SHARE * width:
        return refined
    top = cv2.GaussianBlur(top.astype(np.float32).reshape(1, -1), (0, 0), 2.0).ravel()
    bottom = cv2.GaussianBlur(bottom.astype(np.float32).reshape(1, -1), (0, 0), 2.0).ravel()
    new_top = _curve(np.column_stack([columns, top]), refined[:, 0])
    new_bottom = _curve(np.column_stack([columns, bottom]), refined[:, 0])
    old_top, old_bottom = _curve(inner_upper, refined[:, 0]), _curve(inner_lower, refined[:, 0])
    edge_top, edge_bottom = _curve(outer_upper, refined[:, 0]), _curve(outer_lower, refined[:, 0])
    within = (refined[:, 0] >= lo_x) & (refined[:, 0] <= hi_x)
    # Every lip landmark keeps its relative place across its lip, now between the outer edge and the
    # refined inner edge (the mesh has several rows of points across each lip).
    y = landmarks[:, 1]
    for edge, old, new, better in ((edge_top, old_top, np.minimum(old_top, new_top), "upper"),
                                   (edge_bottom, old_bottom, np.maximum(old_bottom, new_bottom), "lower")):  # fmt: skip
        low, high = (edge, old) if better == "upper" else (old, edge)
        band = within & (y >= low - 0.5) & (y <= high + 0.5)
        share = np.clip((y - edge) / np.where(np.abs(old - edge) < 1e-3, 1e-3, old - edge), 0.0, 1.0)
        refined[band, 1] = (edge + share * (new - edge))[band]
    return refined


def photo_gap(landmarks: np.ndarray) -> float:
    """Largest vertical distance between the inner lips (pixels)."""
    upper = landmarks[list(topo.LIPS_INNER_UPPER), :2]
    lower = landmarks[list(topo.LIPS_INNER_LOWER), :2]
    xs = np.linspace(max(upper[:, 0].min(), lower[:, 0].min()), min(upper[:, 0].max(), lower[:, 0].max()), 32)
    return float(np.max(_curve(lower, xs) - _curve(upper, xs), initial=0.0))
