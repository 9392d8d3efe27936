"""Temporal stability monitor: flicker of what should not change, and jitter of rigid landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from fusion import topology as topo
from quality.scores import StabilityScores

RIGID_POINTS = (topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER, topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER, 168)


def mean_outside_mouth(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean brightness of the whole frame except a padded box around the mouth: everything that a
    talking head should keep still. A large area, so head motion and landmark jitter barely move it,
    while a flickering exposure or colour correction moves all of it."""
    height, width = frame.shape[:2]
    lips = landmarks[list(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER), :2]
    pad = 0.5 * float(np.ptp(lips[:, 0]))
    x0, y0 = np.maximum(np.floor(lips.min(0) - pad).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(lips.max(0) + pad).astype(int), [width, height])
    box = max(0, x1 - x0) * max(0, y1 - y0)
    # cv2.mean sums in C without a float copy of the frame (the numpy version cost ~3 ms a frame).
    total = _brightness(frame) * height * width
    inner = _brightness(frame[y0:y1, x0:x1]) * box if box else 0.0
    return (total - inner) / max(height * width - box, 1)


def _brightness(image: np.ndarray) -> float:
    means = cv2.mean(image)
    return float(np.mean(means[: image.shape[2]])) if image.ndim == 3 else float(means[0])


def typical_step(series: np.ndarray) -> float:
    """Median absolute frame-to-frame change: flicker is a property of most frames, so one blink or
    one mis-tracked frame does not count as flicker."""
    steps = np.abs(np.diff(series[~np.isnan(series)]))
    return float(np.median(steps)) if steps.size else 0.0


def stability_scores(outside_mouth: np.ndarray, background: np.ndarray, rigid: np.ndarray) -> StabilityScores:
    accel = np.linalg.norm(rigid[2:] - 2 * rigid[1:-1] + rigid[:-2], axis=2).mean(axis=1)
    jitter = float(np.nanmedian(accel)) if np.isfinite(accel).any() else 0.0
    face, corners = round(typical_step(outside_mouth), 3), round(typical_step(background), 3)
    return StabilityScores(
        flicker_face=face, flicker_background=corners, landmark_jitter=round(jitter, 5), flicker=max(face, corners)
    )
