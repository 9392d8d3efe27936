"""Colour monitor: skin-tone drift over the video and distance from the avatar's photo (CIE76 ΔE)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from config.settings import ColorLimits
from quality.monitor import FrameView, ObserveSetup, ScoreContext, SeriesObserver
from quality.scores import ColorScores
from vision import topology as topo

CHEEKS = (50, 280)


def _box_mean(image: np.ndarray, centre: np.ndarray, half_w: float, half_h: float) -> np.ndarray | None:
    x0, y0 = int(max(centre[0] - half_w, 0)), int(max(centre[1] - half_h, 0))
    x1, y1 = int(min(centre[0] + half_w, image.shape[1])), int(min(centre[1] + half_h, image.shape[0]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return image[y0:y1, x0:x1].reshape(-1, image.shape[2] if image.ndim == 3 else 1).mean(axis=0)


def skin_lab(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean Lab colour (L 0-100, a, b) of two cheek patches."""
    interocular = float(np.linalg.norm(landmarks[topo.LEFT_EYE_OUTER, :2] - landmarks[topo.RIGHT_EYE_OUTER, :2]))
    means = [_box_mean(image_bgr, landmarks[i, :2], 0.08 * interocular, 0.08 * interocular) for i in CHEEKS]
    means = [m for m in means if m is not None]
    if not means:
        return np.full(3, np.nan)
    pixel = np.mean(means, axis=0).astype(np.float32).reshape(1, 1, 3) / 255.0
    return cv2.cvtColor(pixel, cv2.COLOR_BGR2LAB).reshape(3).astype(float)


def color_scores(skin: np.ndarray, fps: float, reference_lab: np.ndarray | None) -> ColorScores:
    """Drift: mean skin colour of the first second vs the last; reference: whole video vs the photo."""
    second = max(1, round(fps))
    first_lab, last_lab = np.nanmean(skin[:second], axis=0), np.nanmean(skin[-second:], axis=0)
    reference = None
    if reference_lab is not None:
        reference = round(float(np.linalg.norm(np.nanmean(skin, axis=0) - reference_lab)), 2)
    return ColorScores(drift_delta_e=round(float(np.linalg.norm(last_lab - first_lab)), 2), reference_delta_e=reference)


def color_failures(scores: ColorScores, limits: ColorLimits) -> list[str]:
    failures = []
    if scores.drift_delta_e > limits.max_drift:
        failures.append(f"skin tone drifts ΔE {scores.drift_delta_e:.1f} > {limits.max_drift}")
    if scores.reference_delta_e is not None and scores.reference_delta_e > limits.max_reference_delta:
        failures.append(
            f"skin tone differs from the avatar by ΔE {scores.reference_delta_e:.1f} > {limits.max_reference_delta}"
        )
    return failures


class SkinObserver(SeriesObserver):
    SERIES: ClassVar[tuple[str, ...]] = ("skin",)

    def add(self, view: FrameView) -> None:
        self.values["skin"].append(skin_lab(view.frame, view.face.landmarks) if view.face else np.full(3, np.nan))

    def export(self) -> dict[str, np.ndarray]:
        return {"skin": np.asarray(self.values["skin"], float).reshape(-1, 3)}


@dataclass(frozen=True)
class ColorMonitor:
    name: str = "color"

    def observer(self, setup: ObserveSetup) -> SkinObserver:
        return SkinObserver()

    def score(self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: ColorLimits) -> ColorScores:
        return color_scores(series["skin"], context.fps, context.reference_lab)

    def failures(self, scores: ColorScores, context: ScoreContext, limits: ColorLimits) -> list[str]:
        return color_failures(scores, limits)


MONITOR = ColorMonitor()
