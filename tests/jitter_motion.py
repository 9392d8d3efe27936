"""Jitter recipes for the landmark-jitter monitor (issue 26), kept in one place so each figure in
docs/benchmarks.md can be made again: a picture that shakes from frame to frame (the whole frame,
or only the face on a steady head, as a pasted face driven by noisy landmarks would), and a clip
laid out off-centre and smaller (as a scene places the presenter), which must not change the score.

Shake sizes are standard deviations per axis in 1080p pixels; the clips are analysis-size frames."""

from __future__ import annotations

import cv2
import numpy as np

from quality.stability import JITTER_POINTS, landmark_jitter
from vision import topology as topo
from vision.analysis import FaceAnalyser


def _moved(frame: np.ndarray, offset: np.ndarray) -> np.ndarray:
    matrix = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
    return cv2.warpAffine(frame, matrix, frame.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def shake(frames: np.ndarray, px_1080: float, seed: int = 0) -> np.ndarray:
    """Every frame moved by a random offset (a camera or a whole render shaking)."""
    rng = np.random.default_rng(seed)
    sigma = px_1080 * frames.shape[1] / 1080
    return np.stack([_moved(frame, rng.normal(0, sigma, 2)) for frame in frames])


def face_shake(frames: np.ndarray, px_1080: float, analyser: FaceAnalyser, seed: int = 1) -> np.ndarray:
    """Only the face (its oval, feathered) moved by a random offset per frame, the head and the
    background steady: what a face pasted by noisy landmarks looks like."""
    rng = np.random.default_rng(seed)
    sigma = px_1080 * frames.shape[1] / 1080
    out, previous = [], None
    for frame in frames:
        face = analyser.track(frame, previous)
        previous = face
        oval = np.round(face.landmarks[list(topo.FACE_OVAL), :2]).astype(np.int32)
        mask = np.zeros(frame.shape[:2], np.float32)
        cv2.fillConvexPoly(mask, cv2.convexHull(oval), 1.0)
        mask = cv2.GaussianBlur(cv2.erode(mask, np.ones((5, 5), np.uint8)), (0, 0), 3)
        offset = rng.normal(0, sigma, 2)
        alpha = _moved(mask, offset)[..., None]
        out.append(np.clip(frame * (1 - alpha) + _moved(frame, offset) * alpha, 0, 255).astype(np.uint8))
    return np.stack(out)


def off_centre(frame: np.ndarray, size: tuple[int, int] = (640, 360), scale: float = 0.6) -> np.ndarray:
    """`frame` scaled by `scale` and placed at the right edge, vertically centred, of a grey `size`
    canvas: the presenter of a scene layout."""
    width, height = size
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 90, np.uint8)
    top = (height - small.shape[0]) // 2
    canvas[top : top + small.shape[0], width - small.shape[1] :] = small
    return canvas


def jitter_of(frames: np.ndarray, analyser: FaceAnalyser) -> float:
    """The gate's landmark jitter of these analysis-size frames: the points and unit the observer
    records (`quality.observe`), tracked the same way, without the other monitors' work."""
    rigid, interocular, previous = [], [], None
    for frame in frames:
        face = analyser.track(frame, previous)
        previous = face
        rigid.append(face.landmarks[list(JITTER_POINTS), :2] if face else np.full((len(JITTER_POINTS), 2), np.nan))
        interocular.append(face.interocular if face else np.nan)
    return landmark_jitter(np.asarray(rigid, float), np.asarray(interocular, float))
