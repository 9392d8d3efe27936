"""Colour monitor: skin-tone drift over the video and distance from the avatar's photo (CIE76 ΔE)."""

from __future__ import annotations

import numpy as np

from quality.scores import ColorScores
from vision.skin import skin_lab  # noqa: F401  (the frames' measurement, shared with the avatar analysis)


def color_scores(skin: np.ndarray, fps: float, reference_lab: np.ndarray | None) -> ColorScores:
    """Drift: mean skin colour of the first second vs the last; reference: whole video vs the photo."""
    second = max(1, round(fps))
    first_lab, last_lab = np.nanmean(skin[:second], axis=0), np.nanmean(skin[-second:], axis=0)
    reference = None
    if reference_lab is not None:
        reference = round(float(np.linalg.norm(np.nanmean(skin, axis=0) - reference_lab)), 2)
    return ColorScores(drift_delta_e=round(float(np.linalg.norm(last_lab - first_lab)), 2), reference_delta_e=reference)
