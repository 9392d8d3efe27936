"""Pose monitor: head angles per frame, and the frames turned beyond the gate (yaw > 60° etc.),
which are interpolated from their neighbours (or dropped) before the other scores are computed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from config.settings import PoseLimits
from quality.monitor import ObserveSetup, ScoreContext
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


def pose_failures(scores: PoseScores, frames: int, limits: PoseLimits) -> list[str]:
    failures = []
    if scores.gated_ratio > limits.max_gated_ratio:
        failures.append(f"pose gate: {scores.gated_frames} frames turned beyond the gate ({scores.gated_ratio:.0%})")
    if scores.frames_without_face / max(frames, 1) > limits.max_gated_ratio:
        failures.append(f"no face in {scores.frames_without_face} of {frames} frames")
    return failures


@dataclass(frozen=True)
class PoseMonitor:
    """Reads the shared head pose; the gate's frames themselves are decided before any monitor is
    scored (`gated_frames`), since lip-sync and the artifacts are judged without them."""

    name: str = "pose"

    def observer(self, setup: ObserveSetup) -> None:
        return None

    def score(self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: PoseLimits) -> PoseScores:
        return pose_scores(context.pose, context.found, context.gated)

    def failures(self, scores: PoseScores, context: ScoreContext, limits: PoseLimits) -> list[str]:
        return pose_failures(scores, context.count, limits)


MONITOR = PoseMonitor()
