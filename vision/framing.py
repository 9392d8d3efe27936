"""Portrait framing: which square of the avatar photo becomes the video's portrait, at what size.

The reenactor works on this square at `work_size` pixels (the face about a third of it), so the cost
per frame does not depend on the photo's resolution; the upscaler later brings it to output size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision import topology as topo

FACE_TO_CROP = 3.0  # crop side = face width × this (head and shoulders)
FACE_CENTRE_Y = 0.42  # where the face centre sits in the crop, from the top


@dataclass(frozen=True)
class Framing:
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo (may extend past it; padded)
    work_size: int

    @property
    def scale(self) -> float:
        return self.work_size / (self.crop[2] - self.crop[0])


def choose_framing(landmarks: np.ndarray, image_shape: tuple[int, ...], work_size: int) -> Framing:
    oval = landmarks[list(topo.FACE_OVAL), :2]
    face_w = float(oval[:, 0].max() - oval[:, 0].min())
    centre = oval.mean(0)
    side = face_w * FACE_TO_CROP
    height, width = image_shape[:2]
    side = min(side, max(height, width) * 1.0)
    x0 = centre[0] - side / 2
    y0 = centre[1] - side * FACE_CENTRE_Y
    x0 = float(np.clip(x0, min(0, width - side), max(0, width - side)))
    y0 = float(np.clip(y0, min(0, height - side), max(0, height - side)))
    return Framing(crop=(round(x0), round(y0), round(x0 + side), round(y0 + side)), work_size=work_size)


def apply_framing(image: np.ndarray, landmarks: np.ndarray, framing: Framing) -> tuple[np.ndarray, np.ndarray]:
    """The work image (Lanczos-resampled crop, edges replicated) and landmarks in its coordinates."""
    x0, y0, _x1, _y1 = framing.crop
    scale = framing.scale
    affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float64)
    work = cv2.warpAffine(
        image, affine, (framing.work_size, framing.work_size), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE
    )
    moved = landmarks.astype(np.float64).copy()
    moved[:, 0] = (moved[:, 0] - x0) * scale
    moved[:, 1] = (moved[:, 1] - y0) * scale
    moved[:, 2] = moved[:, 2] * scale
    return work, moved.astype(np.float32)
