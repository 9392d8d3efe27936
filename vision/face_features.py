"""Scale-free measurements of one analysed face, shared by the quality measurements of rendered
videos (`quality.measure`) and by reading motion from a recorded driver video (`driver_synth.driver_video`).

Distances are divided by the mouth width or the interocular distance, so they do not depend on how
large the face is in the frame; angles are in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision import topology as topo

RIGHT_EYE_LIDS = (159, 145, 33, 133)  # upper, lower, outer corner, inner corner
LEFT_EYE_LIDS = (386, 374, 263, 362)
BROW_OVER_EYE = ((105, 159), (334, 386))
PIVOT_BELOW_NOSE = 1.6  # the neck pivot, in interocular distances below the nose tip


@dataclass(frozen=True)
class FaceFeatures:
    lip_gap: float  # inner-lip gap / mouth width
    lip_gap_io: float  # inner-lip gap / interocular distance
    mouth_width_io: float  # mouth corner distance / interocular distance
    upper_lip_io: float  # nose tip to upper inner lip / interocular distance
    eye_open: float  # eyelid opening / eye width, both eyes averaged
    eye_contrast: float  # grey-level spread inside the eyes (nan without the image); falls when they close
    brow_height: float  # brow to upper eyelid / interocular distance
    yaw: float  # degrees, from the 3D line between the cheeks
    pitch: float  # degrees, from the 3D line between forehead and the base of the nose
    roll: float  # degrees, + when the eye line rotates clockwise in the image
    brow_lift: float = 0.0  # brows above the eye-corner line / interocular distance (blinks do not move it)
    centre_x: float = 0.0  # where the head pivots (in the neck, below the nose), in pixels: head translation
    centre_y: float = 0.0
    interocular_px: float = 0.0  # in pixels (head scale: nearer or farther)


def _distance(points: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(points[a, :2] - points[b, :2]))


def _ratio(points: np.ndarray, top: int, bottom: int, left: int, right: int) -> float:
    return _distance(points, top, bottom) / max(_distance(points, left, right), 1e-6)


def eye_contrast(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Standard deviation of grey levels inside both eye outlines.

    The 468-point mesh keeps predicting open lids through a blink, so blinks are read from pixels:
    an open eye shows white sclera next to a dark iris, a closed one only lid skin.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    spreads = []
    for upper, lower in ((topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER), (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER)):
        outline = np.concatenate([landmarks[list(upper), :2], landmarks[list(lower), :2][::-1]])
        x0, y0 = np.maximum(np.floor(outline.min(0)).astype(int) - 1, 0)
        x1, y1 = np.ceil(outline.max(0)).astype(int) + 2
        patch = grey[y0:y1, x0:x1]
        if patch.size == 0:
            continue
        # Pad the outline vertically: when the lids meet, the outline is a line and would hold no pixels.
        centre_y = outline[:, 1].mean()
        padded = outline.copy()
        padded[:, 1] = outline[:, 1] + np.sign(outline[:, 1] - centre_y) * 1.5
        mask = np.zeros(patch.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(padded - [x0, y0]).astype(np.int32)], 255)
        values = patch[mask > 0]
        if values.size >= 4:
            spreads.append(float(values.std()))
    return float(np.mean(spreads)) if spreads else float("nan")


def face_features(landmarks: np.ndarray, image: np.ndarray | None = None) -> FaceFeatures:
    lm = landmarks
    right_eye = lm[[topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER], :2].mean(0)
    left_eye = lm[[topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER], :2].mean(0)
    interocular = max(float(np.linalg.norm(left_eye - right_eye)), 1e-6)
    gap = _distance(lm, topo.UPPER_LIP_MID, topo.LOWER_LIP_MID)
    width = _distance(lm, *topo.MOUTH_CORNERS)
    eye_line = left_eye - right_eye
    roll = float(np.degrees(np.arctan2(eye_line[1], eye_line[0])))
    # Yaw from the mesh's depth across the cheeks (points the jaw and lips never move). Pitch from
    # where the nose tip projects below the eye line: the mesh's depth is too noisy for it.
    across = lm[topo.LEFT_CHEEK] - lm[topo.RIGHT_CHEEK]
    yaw = float(np.degrees(np.arctan2(across[2], across[0])))
    eyes_y = (right_eye[1] + left_eye[1]) / 2
    pitch = float(np.degrees(np.arctan((lm[topo.NOSE_TIP, 1] - eyes_y) / interocular)))
    brows = np.mean([_distance(lm, brow, lid) for brow, lid in BROW_OVER_EYE])
    centre = (right_eye + left_eye) / 2
    normal = np.array([eye_line[1], -eye_line[0]]) / interocular  # perpendicular to the eye line, upwards
    lift = np.mean([float((lm[brow, :2] - centre) @ normal) for brow, _ in BROW_OVER_EYE])
    # The head turns about the neck: that point moves only when the head (and body) moves, so its
    # motion is the translation, apart from the rotation (the eyes move with both).
    pivot = lm[topo.NOSE_TIP, :2] - PIVOT_BELOW_NOSE * interocular * normal
    return FaceFeatures(
        lip_gap=gap / max(width, 1e-6),
        lip_gap_io=gap / interocular,
        mouth_width_io=width / interocular,
        upper_lip_io=_distance(lm, topo.NOSE_TIP, topo.UPPER_LIP_MID) / interocular,
        eye_open=(_ratio(lm, *RIGHT_EYE_LIDS) + _ratio(lm, *LEFT_EYE_LIDS)) / 2,
        eye_contrast=eye_contrast(image, lm) if image is not None else float("nan"),
        brow_height=float(brows / interocular),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        brow_lift=lift / interocular,
        centre_x=float(pivot[0]),
        centre_y=float(pivot[1]),
        interocular_px=interocular,
    )


def eye_openness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Area of dark iris/pupil blobs around the eyes, per squared eye width (both eyes averaged).

    For a single photo there is no open-eye reference to compare with, and a closed eye still has a
    dark lash line; so dark pixels (below half the bright level around the eye) are opened with a
    disc of 12 % of the eye width, which erases lines and keeps the round iris. Open eyes measure
    about 0.1-0.2, closed ones about 0.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    values = []
    for upper, lower in ((topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER), (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER)):
        outline = landmarks[list(upper) + list(lower[::-1]), :2]
        width = max(float(np.ptp(outline[:, 0])), 1.0)
        cx, cy = outline.mean(0)
        x0, x1 = max(int(cx - 0.6 * width), 0), int(cx + 0.6 * width)
        y0, y1 = max(int(cy - 0.4 * width), 0), int(cy + 0.4 * width)
        box = grey[y0:y1, x0:x1].astype(np.float32)
        if box.size == 0:
            continue
        dark = (box < 0.5 * np.percentile(box, 90)).astype(np.uint8)
        size = max(3, round(0.12 * width))
        opened = cv2.morphologyEx(dark, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        values.append(float(opened.sum()) / (width * width))
    return float(np.mean(values)) if values else 0.0
