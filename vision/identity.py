"""Identity embedding of a face: dlib's ResNet face recognition model (128-d, CC0, sha256-pinned).

dlib normally aligns the face with its own landmark predictors; we align with the MediaPipe mesh we
already have (eye centres and mouth centre → fixed positions in a 150×150 chip, a similarity
transform), so no dlib landmark model is needed. Embeddings of the same person are typically closer
than 0.5 (Euclidean); dlib's documented same-person threshold is 0.6.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision import topology as topo
from vision.models import ModelRegistry

EMBEDDING_MODEL = "face_embedding"
CHIP = 150
# Where the eye centres and the mouth centre land in the chip (dlib's 25 %-padded face chip layout).
TEMPLATE = np.array([[51.0, 45.0], [99.0, 45.0], [75.0, 107.0]], dtype=np.float32)


def face_chip(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """150×150 RGB chip with the face at dlib's canonical position and scale."""
    lm = landmarks[:, :2]
    right_eye = lm[[topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER]].mean(0)
    left_eye = lm[[topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER]].mean(0)
    mouth = lm[list(topo.MOUTH_CORNERS)].mean(0)
    points = np.array([right_eye, left_eye, mouth], dtype=np.float64)
    matrix = similarity_transform(points, TEMPLATE.astype(np.float64))
    chip = cv2.warpAffine(image_bgr, matrix, (CHIP, CHIP), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping source onto target
    (Umeyama), as a 2×3 matrix. Closed form over all points: no RANSAC, so the alignment does not jump
    when the mouth moves."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    variance = float((s**2).sum() / len(s))
    if variance < 1e-9:
        raise ValueError("face alignment points coincide; the face is too small or the landmarks failed")
    u, sigma, vt = np.linalg.svd(t.T @ s / len(s))
    sign = np.diag([1.0, 1.0 if np.linalg.det(u @ vt) >= 0 else -1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign)) / variance
    translation = mu_t - scale * rotation @ mu_s
    return np.hstack([scale * rotation, translation[:, None]])


class IdentityEmbedder:
    """Loads the pinned dlib model once; `embed` returns its 128-d descriptor (compare with Euclidean distance)."""

    def __init__(self, registry: ModelRegistry) -> None:
        import dlib

        self.model = dlib.face_recognition_model_v1(str(registry.path(EMBEDDING_MODEL)))

    def embed(self, image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        chip = np.ascontiguousarray(face_chip(image_bgr, landmarks))
        return np.asarray(self.model.compute_face_descriptor(chip), dtype=np.float32)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
