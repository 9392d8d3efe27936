"""Temporal stability monitor: flicker of what should not change, and jitter of rigid landmarks.

Jitter is what smooth motion does not explain: each frame's rigid landmarks (eye corners, nose
bridge, in analysis pixels) are predicted from the three frames on either side by a quadratic in
time, evaluated up to half a frame early or late, and the miss is measured per interocular
distance (issue 26). A head that turns ±20°, leans in, sways 30 px per 1080p frame or was
resampled from 30 to 25 fps (a frame's timestamp off by up to half a source frame) moves smoothly
in that sense; a face that shakes from frame to frame, on a steady or a moving head, does not.
A per-frame similarity fit to the upper head, as the seam monitor uses, is not taken out here: it
would take the shaking face out with the head (what the earlier scores measured: docs/decisions.md,
"Monitors").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from config.settings import StabilityLimits
from quality.monitor import FrameView, ObserveSetup, ScoreContext, SeriesObserver
from quality.scores import StabilityScores
from vision import topology as topo

RIGID_POINTS = (topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER, topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER, 168)
# The jitter's points: the eye corners and the nose bridge down to its middle (168, 6, 197, 195): rigid
# on the skull, and more of them average the mesh's own noise while a shaking face moves them all.
JITTER_POINTS = (*RIGID_POINTS, 6, 197, 195)


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
    # cv2.mean sums in C without a float copy of the frame.
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


JITTER_REACH = 3  # frames on either side that predict a frame (0.12 s at 25 fps: a turn is smooth over it)
JITTER_ORDER = 2  # a quadratic: speed and acceleration of the head are allowed, shaking is not
JITTER_SLACK = 0.5  # frames of timing error forgiven (30 -> 25 fps by nearest frame: up to 0.4)
_SLACK_STEPS = 11


def _prediction_weights() -> np.ndarray:
    """(delays, neighbours): the quadratic through the neighbours at t-3..t-1, t+1..t+3, evaluated
    at t + delay for each delay in [-slack, slack]. The frame itself is left out, so its own noise
    is not half-absorbed by the fit."""
    offsets = np.array([k for k in range(-JITTER_REACH, JITTER_REACH + 1) if k], float)
    fit = np.linalg.pinv(np.vander(offsets, JITTER_ORDER + 1))
    delays = np.linspace(-JITTER_SLACK, JITTER_SLACK, _SLACK_STEPS)
    return np.vander(delays, JITTER_ORDER + 1) @ fit


def jitter_series(rigid: np.ndarray, interocular: np.ndarray) -> np.ndarray:
    """Per frame (nan at the ends and near frames without a face): how far the rigid landmarks
    (frames, points, 2, pixels) are from where the smooth motion around them puts them, at the
    best timing within the slack, per interocular distance (mean over the points)."""
    count = len(rigid)
    reach = JITTER_REACH
    if count < 2 * reach + 1:
        return np.full(count, np.nan)
    centre = rigid[reach : count - reach]
    neighbours = np.stack(
        [rigid[reach + k : count - reach + k] for k in range(-reach, reach + 1) if k]
    )  # (neighbours, frames, points, 2)
    predicted = np.einsum("dk,kfpc->dfpc", _prediction_weights(), neighbours)
    miss = np.linalg.norm(predicted - centre[None], axis=3).mean(axis=2).min(axis=0)
    out = np.full(count, np.nan)
    out[reach : count - reach] = miss / np.maximum(interocular[reach : count - reach], 1e-6)
    return out


def landmark_jitter(rigid: np.ndarray, interocular: np.ndarray) -> float:
    """The median frame's jitter: a shaking face shakes in most frames, while a blink, one
    re-detected frame or one doubled step of a resampled clip is one frame."""
    series = jitter_series(np.asarray(rigid, float), np.asarray(interocular, float))
    return float(np.nanmedian(series)) if np.isfinite(series).any() else 0.0


def stability_scores(
    outside_mouth: np.ndarray, background: np.ndarray, rigid: np.ndarray, interocular: np.ndarray
) -> StabilityScores:
    jitter = landmark_jitter(rigid, interocular)
    face, corners = round(typical_step(outside_mouth), 3), round(typical_step(background), 3)
    return StabilityScores(
        flicker_face=face, flicker_background=corners, landmark_jitter=round(jitter, 5), flicker=max(face, corners)
    )


def stability_failures(scores: StabilityScores, limits: StabilityLimits) -> list[str]:
    failures = []
    if scores.flicker > limits.flicker_max:
        failures.append(f"flicker {scores.flicker:.2f} grey levels per frame > {limits.flicker_max}")
    if scores.landmark_jitter > limits.jitter_max:
        failures.append(f"landmark jitter {scores.landmark_jitter:.4f} > {limits.jitter_max}")
    return failures


def corner_brightness(frame: np.ndarray) -> float:
    """Mean brightness of the two top corners: the backdrop, which must not flicker either."""
    height, width = frame.shape[:2]
    corners = np.concatenate([frame[: height // 8, : width // 12], frame[: height // 8, -width // 12 :]], axis=1)
    return float(np.mean(cv2.mean(corners)[:3]))


class StabilityObserver(SeriesObserver):
    SERIES: ClassVar[tuple[str, ...]] = ("outside", "background", "rigid", "interocular")

    def add(self, view: FrameView) -> None:
        self.values["background"].append(corner_brightness(view.frame))
        if view.face is None:
            self.values["outside"].append(np.nan)
            self.values["rigid"].append(np.full((len(JITTER_POINTS), 2), np.nan))
            self.values["interocular"].append(np.nan)
            return
        landmarks = view.face.landmarks
        self.values["outside"].append(mean_outside_mouth(view.frame, landmarks))
        # Pixels, not per interocular distance: dividing positions by each frame's distance multiplied
        # that distance's noise by the points' distance from the corner (the jitter is divided instead).
        self.values["rigid"].append(landmarks[list(JITTER_POINTS), :2].astype(float))
        self.values["interocular"].append(view.face.interocular)

    def export(self) -> dict[str, np.ndarray]:
        exported = super().export()
        exported["rigid"] = exported["rigid"].reshape(-1, len(JITTER_POINTS), 2)
        return exported


@dataclass(frozen=True)
class StabilityMonitor:
    """Flicker (of the frame outside the mouth and of the backdrop) and landmark jitter."""

    name: str = "stability"

    def observer(self, setup: ObserveSetup) -> StabilityObserver:
        return StabilityObserver()

    def score(
        self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: StabilityLimits
    ) -> StabilityScores:
        return stability_scores(series["outside"], series["background"], series["rigid"], series["interocular"])

    def failures(self, scores: StabilityScores, context: ScoreContext, limits: StabilityLimits) -> list[str]:
        return stability_failures(scores, limits)


MONITOR = StabilityMonitor()
