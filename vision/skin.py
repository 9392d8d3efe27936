"""Skin colour of a face: the mean Lab colour of two cheek patches.

It lives in the vision layer because two readers need the same measurement: the avatar analysis takes
it once from the photo (the colour monitor's reference) and the colour monitor takes it from every
observed frame; both must measure alike for the reference distance to mean anything.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision import topology as topo

CHEEKS = (50, 280)


def _box_mean(image: np.ndarray, centre: np.ndarray, half_w: float, half_h: float) -> np.ndarray | None:
    x0, y0 = int(max(centre[0] - half_w, 0)), int(max(centre[1] - half_h, 0))
    x1, y1 = int(min(centre[0] + half_w, image.shape[1])), int(min(centre[1] + half_h, image.shape[0]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return image[y0:y1, x0:x1].reshape(-1, image.shape[2] if image.ndim == 3 else 1).mean(axis=0)


def skin_lab(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean Lab colour (L 0-100, a, b) of two cheek patches (NaN when both fall outside the image)."""
    interocular = float(np.linalg.norm(landmarks[topo.LEFT_EYE_OUTER, :2] - landmarks[topo.RIGHT_EYE_OUTER, :2]))
    means = [_box_mean(image_bgr, landmarks[i, :2], 0.08 * interocular, 0.08 * interocular) for i in CHEEKS]
    means = [m for m in means if m is not None]
    if not means:
        return np.full(3, np.nan)
    pixel = np.mean(means, axis=0).astype(np.float32).reshape(1, 1, 3) / 255.0
    return cv2.cvtColor(pixel, cv2.COLOR_BGR2LAB).reshape(3).astype(float)
