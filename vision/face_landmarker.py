"""MediaPipe 468-point face mesh (Apache-2.0) running as ONNX on a rotated face crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vision.face_detector import Detection
from vision.providers import create_session

INPUT_SIZE = 192
ROI_SCALE = 1.5


def roi_transform(centre: np.ndarray, size: float, angle_rad: float) -> np.ndarray:
    """2×3 affine mapping image pixels into the 192×192 crop (rotated so the eyes are level)."""
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    scale = INPUT_SIZE / size
    rotation = np.array([[cos, sin], [-sin, cos]], dtype=np.float64) * scale
    translation = np.array([INPUT_SIZE / 2, INPUT_SIZE / 2]) - rotation @ centre
    return np.hstack([rotation, translation[:, None]])


class FaceLandmarker:
    """Returns (468, 3) landmarks in image pixels (z in the same pixel scale) and a face score."""

    def __init__(self, model_path: Path) -> None:
        self.session = create_session(model_path)
        self.input_name = self.session.get_inputs()[0].name

    def landmarks_from_roi(self, image_bgr: np.ndarray, centre: np.ndarray, size: float, angle: float):
        affine = roi_transform(centre, size, angle)
        crop = cv2.warpAffine(image_bgr, affine, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        tensor = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
        raw, flag = self.session.run(None, {self.input_name: tensor})
        points = raw.reshape(468, 3).astype(np.float64)
        inverse = cv2.invertAffineTransform(affine)
        xy = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        z = points[:, 2:] * (size / INPUT_SIZE)
        score = float(1.0 / (1.0 + np.exp(-float(np.asarray(flag).reshape(-1)[0]))))
        return np.hstack([xy, z]).astype(np.float32), score

    def landmarks(self, image_bgr: np.ndarray, detection: Detection) -> tuple[np.ndarray, float]:
        right_eye, left_eye = detection.keypoints[0], detection.keypoints[1]
        angle = float(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
        x0, y0, x1, y1 = detection.box
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        size = max(x1 - x0, y1 - y0) * ROI_SCALE
        points, _score = self.landmarks_from_roi(image_bgr, centre, size, angle)
        # A second pass centred on the first mesh gives a tighter, better-aligned crop.
        refined_centre = points[:, :2].mean(axis=0)
        span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
        return self.landmarks_from_roi(image_bgr, refined_centre, float(span.max()) * ROI_SCALE, angle)
