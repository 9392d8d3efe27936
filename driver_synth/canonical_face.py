"""The viewable standard driver: a neutral, drawn canonical face performing the motion track.

It is for people (review a driver before it is used on any avatar), not for the fusion engine,
which reads the motion track itself. Frames are generated one at a time so any length streams.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from driver_synth.track import MotionFrame, MotionTrack

SIZE = 320
SKIN = (150, 180, 220)
LIP = (95, 95, 175)
CAVITY = (40, 30, 70)
TEETH = (225, 230, 235)


def mouth_outline(frame: MotionFrame, centre: tuple[float, float], half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Outer lip contour and inner opening of the parametric mouth, as (N, 2) point arrays."""
    width = half_width * (1 + 0.22 * frame.lip_width - 0.3 * frame.lip_round)
    gap = frame.mouth_gap * half_width * 0.9
    raise_upper = frame.teeth * half_width * 0.08
    xs = np.linspace(-1, 1, 21)
    taper = 1 - xs**2
    cx, cy = centre
    upper_inner = np.stack([cx + xs * width * 0.92, cy - raise_upper * taper - gap * 0.15 * taper], 1)
    lower_inner = np.stack([cx + xs * width * 0.92, cy + gap * taper ** (0.8 + 0.6 * frame.lip_round)], 1)
    upper_outer = np.stack([cx + xs * width, upper_inner[:, 1] - half_width * 0.28 * taper**0.6], 1)
    lower_outer = np.stack([cx + xs * width, lower_inner[:, 1] + half_width * 0.32 * taper**0.6], 1)
    outer = np.concatenate([upper_outer, lower_outer[::-1]])
    inner = np.concatenate([upper_inner, lower_inner[::-1]])
    return outer, inner


BACKGROUND = (60, 60, 60)


def static_face() -> np.ndarray:
    """Head and nose: drawn once per video, every frame starts from a copy."""
    layer = np.full((SIZE, SIZE, 3), BACKGROUND, dtype=np.uint8)
    cx, cy = SIZE // 2, SIZE // 2
    cv2.ellipse(layer, (cx, cy), (100, 130), 0, 0, 360, SKIN, -1, cv2.LINE_AA)
    cv2.line(layer, (cx, cy - 10), (cx - 6, cy + 25), (120, 140, 180), 2, cv2.LINE_AA)
    return layer


def render_frame(frame: MotionFrame, face: np.ndarray | None = None) -> np.ndarray:
    layer = (static_face() if face is None else face).copy()
    cx, cy = SIZE / 2, SIZE / 2
    for side in (-1, 1):
        ex, ey = cx + side * 42, cy - 30
        open_h = max(1, int(14 * (1 - frame.blink)))
        cv2.ellipse(layer, (int(ex), int(ey)), (20, open_h), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        if open_h > 3:
            cv2.circle(layer, (int(ex), int(ey)), min(9, open_h), (70, 50, 40), -1, cv2.LINE_AA)
        cv2.line(layer, (int(ex - 22), int(ey - 28)), (int(ex + 22), int(ey - 30)), (60, 70, 90), 4, cv2.LINE_AA)
    outer, inner = mouth_outline(frame, (cx, cy + 62), 34)
    cv2.fillPoly(layer, [outer.astype(np.int32)], LIP, cv2.LINE_AA)
    if frame.mouth_gap > 0.02 or frame.teeth > 0.2:
        cv2.fillPoly(layer, [inner.astype(np.int32)], CAVITY, cv2.LINE_AA)
        top = inner[:21]
        teeth = np.concatenate([top, top[::-1] + np.array([0.0, 6 + 4 * frame.teeth])])
        mask = np.zeros(layer.shape[:2], np.uint8)
        cv2.fillPoly(mask, [inner.astype(np.int32)], 255)
        teeth_layer = layer.copy()
        cv2.fillPoly(teeth_layer, [teeth.astype(np.int32)], TEETH, cv2.LINE_AA)
        cv2.copyTo(teeth_layer, mask, layer)
    else:
        cv2.polylines(layer, [inner[:21].astype(np.int32)], False, (60, 50, 120), 2, cv2.LINE_AA)
    pose = cv2.getRotationMatrix2D((cx, cy), -frame.head_roll, 1.0)
    pose[0, 2] += frame.head_yaw * 3.0
    pose[1, 2] += frame.head_pitch * 3.0
    image = cv2.warpAffine(layer, pose, (SIZE, SIZE), borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)
    cv2.putText(
        image, "standard driver", (8, SIZE - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 200, 200), 1, cv2.LINE_AA
    )
    return image


def driver_frames(track: MotionTrack) -> Iterator[np.ndarray]:
    face = static_face()
    for index in range(track.frame_count):
        yield render_frame(track.frame(index), face)
