"""Colour monitor: skin-tone drift over the video and distance from the avatar's photo (CIE76 ΔE)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from config.settings import ColorLimits
from quality.monitor import FrameView, ObserveSetup, ScoreContext, SeriesObserver
from quality.scores import ColorScores
from vision.skin import skin_lab  # the frames are measured like the avatar photo


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
