"""Face analysis: detect exactly one face and fit the 468-point mesh, with clear errors otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media.errors import MediaError
from media.images import decode_bounded
from vision import topology as topo
from vision.errors import FaceNotFoundError, MultipleFacesError
from vision.face_detector import Detection, FaceDetector
from vision.face_landmarker import ROI_SCALE, FaceLandmarker
from vision.models import ModelRegistry

DETECTOR_MODEL = "face_detector"
LANDMARKER_MODEL = "face_landmarker"


@dataclass(frozen=True)
class Face:
    """One analysed face: detection box and score, 468 landmarks (x, y, z) in image pixels."""

    detection: Detection
    landmarks: np.ndarray
    mesh_score: float

    @property
    def width(self) -> float:
        oval = self.landmarks[list(topo.FACE_OVAL), :2]
        return float(oval[:, 0].max() - oval[:, 0].min())

    @property
    def interocular(self) -> float:
        right = self.landmarks[[topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER], :2].mean(0)
        left = self.landmarks[[topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER], :2].mean(0)
        return float(np.linalg.norm(left - right))


def read_image(path: Path, max_pixels: int) -> np.ndarray:
    """Read a BGR image or raise MediaError naming the file (missing, unreadable, corrupt, or more
    than `max_pixels` by its header: `images.max_pixels`, checked before decoding)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"image not found: {path}; check the path")
    image = decode_bounded(path, max_pixels, cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"image {path} is corrupt or not a supported format; use a valid JPEG or PNG")
    return image


class FaceAnalyser:
    """Detector + landmarker loaded once from verified model files."""

    def __init__(self, registry: ModelRegistry, min_score: float = 0.55) -> None:
        self.detector = FaceDetector(registry.path(DETECTOR_MODEL), min_score=min_score)
        self.landmarker = FaceLandmarker(registry.path(LANDMARKER_MODEL))

    def faces(self, image_bgr: np.ndarray) -> list[Face]:
        found = []
        for detection in self.detector.detect(image_bgr):
            landmarks, score = self.landmarker.landmarks(image_bgr, detection)
            found.append(Face(detection=detection, landmarks=landmarks, mesh_score=score))
        return found

    def single_face(self, image_bgr: np.ndarray, source: str = "image") -> Face:
        """Exactly one face, or an error saying what was found and what to do."""
        faces = self.faces(image_bgr)
        if not faces:
            raise FaceNotFoundError(f"no face found in {source}; use a frontal photo with one clearly visible face")
        if len(faces) > 1:
            raise MultipleFacesError(
                f"{len(faces)} faces found in {source}; crop the photo so it shows exactly one person"
            )
        return faces[0]

    def track(self, image_bgr: np.ndarray, previous: Face | None, min_score: float = 0.5) -> Face | None:
        """The face in a video frame: one landmark pass on the previous frame's face region (about a
        third of a full detection's cost); a full detection when there is no previous face or the
        mesh loses confidence (a cut, an occlusion)."""
        if previous is not None:
            lm = previous.landmarks[:, :2]
            eyes = lm[[topo.RIGHT_EYE_OUTER, topo.LEFT_EYE_OUTER]]
            angle = float(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
            span = float((lm.max(axis=0) - lm.min(axis=0)).max())
            landmarks, score = self.landmarker.landmarks_from_roi(image_bgr, lm.mean(axis=0), span * ROI_SCALE, angle)
            if score >= min_score:
                return Face(detection=previous.detection, landmarks=landmarks, mesh_score=score)
        return self.largest_face(image_bgr)

    def largest_face(self, image_bgr: np.ndarray) -> Face | None:
        """The largest face in a frame (for monitoring videos), or None when there is none."""
        faces = self.faces(image_bgr)
        return max(faces, key=lambda face: face.detection.width) if faces else None
