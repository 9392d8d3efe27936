"""Pose monitor: head angles per frame, and the frames turned beyond the gate (yaw > 60° etc.),
which are interpolated from their neighbours (or dropped) before the other scores are computed."""

from __future__ import annotations

import numpy as np

from quality.scores import PoseScores


def gated_frames(pose: np.ndarray, found: np.ndarray, limits_deg: tuple[float, float, float]) -> np.ndarray:
    """Frames with a face turned further than (yaw, pitch, roll) limits."""
    beyond = np.zeros(len(pose), bool)
    for axis, limit in enumerate(limits_deg):
        with np.errstate(invalid="ignore"):
            beyond |= np.abs(pose[:, axis]) > limit
    return found & beyond


def without_gated(values: np.ndarray, gated: np.ndarray, action: str) -> np.ndarray:
    """Values with gated frames interpolated from neighbours (action "interpolate") or nan ("drop")."""
    out = values.astype(float).copy()
    if not gated.any():
        return out
    out[gated] = np.nan
    if action == "drop":
        return out
    good = ~np.isnan(out)
    if good.sum() < 2:
        return out
    index = np.arange(len(out))
    return np.interp(index, index[good], out[good])


def pose_scores(pose: np.ndarray, found: np.ndarray, gated: np.ndarray) -> PoseScores:
    count = max(len(pose), 1)
    return PoseScores(
        max_abs_yaw=round(float(np.nanmax(np.abs(pose[:, 0]))), 1),
        max_abs_pitch=round(float(np.nanmax(np.abs(pose[:, 1]))), 1),
        max_abs_roll=round(float(np.nanmax(np.abs(pose[:, 2]))), 1),
        gated_frames=int(gated.sum()),
        gated_ratio=round(float(gated.sum() / count), 3),
        frames_without_face=int((~found).sum()),
    )
