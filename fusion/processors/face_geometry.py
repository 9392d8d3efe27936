"""Face crops for neural processors: 5-point alignment onto a model's template, feathered paste-back.

Face models are trained on crops aligned in one precise way; a crop aligned differently gives a
blurred or distorted face. The formats (ArcFace/insightface, FFHQ as used by GFPGAN/GPEN/CodeFormer)
fix five points (eye centres, nose tip, mouth corners) at template positions; we map the mesh's
points onto them with a least-squares similarity (no RANSAC: the crop does not jump when the mouth
moves), and paste the model's output back through the inverse transform with a feathered mask, so
no crop edge can show.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fusion.processors.base import Rect, union_rect
from vision import topology as topo
from vision.identity import similarity_transform

# Published alignment points, in pixels of the crop each was defined for.
ARCFACE_112 = np.array(  # insightface's reference for 112×112 ArcFace crops
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
FFHQ_512 = np.array(  # the FFHQ-aligned 512×512 face template of GFPGAN/facexlib
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043],
     [313.08905, 371.15118]]
)  # fmt: skip
TEMPLATES = {
    "arcface_112": ARCFACE_112 / 112.0,
    # insightface's crop at 128 keeps ArcFace's scale and shifts x by 8 px (inswapper's alignment)
    "arcface_128": (ARCFACE_112 + np.array([8.0, 0.0])) / 128.0,
    "ffhq_512": FFHQ_512 / 512.0,
}

_RIGHT_EYE = tuple(sorted(set(topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER)))
_LEFT_EYE = tuple(sorted(set(topo.LEFT_EYE_UPPER + topo.LEFT_EYE_LOWER)))


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """The 5 alignment points from the 468-point mesh, in the formats' order: the eye on the image's
    left (the person's right), the other eye, the nose tip, the left and the right mouth corner."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    return np.array(
        [
            lm[list(_RIGHT_EYE)].mean(0),
            lm[list(_LEFT_EYE)].mean(0),
            lm[topo.NOSE_TIP],
            lm[topo.MOUTH_CORNERS[0]],
            lm[topo.MOUTH_CORNERS[1]],
        ]
    )


def align(landmarks: np.ndarray, template: str, size: int) -> np.ndarray:
    """2×3 matrix mapping frame pixels onto a `size`×`size` crop in `template`'s alignment."""
    return similarity_transform(five_points(landmarks), TEMPLATES[template] * size)


def box_alignment(box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """2×3 matrix mapping an axis-aligned box of the frame onto a crop of `size` (w, h) (Wav2Lip's crop)."""
    x0, y0, x1, y1 = box
    sx, sy = size[0] / max(x1 - x0, 1e-6), size[1] / max(y1 - y0, 1e-6)
    return np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]])


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The crop: area-averaged when it shrinks the face (no aliasing), bilinear when it enlarges it."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    flags = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)


def feather_mask(size: tuple[int, int], feather: float) -> np.ndarray:
    """(h, w) float32 mask: 1 inside, easing to 0 at the crop's edges over `feather` × the side."""

    def ramp(length: int) -> np.ndarray:
        width = max(feather * length, 1.0)
        distance = np.minimum(np.arange(length), np.arange(length)[::-1]) + 0.5
        t = np.clip(distance / width, 0.0, 1.0)
        return (t * t * (3 - 2 * t)).astype(np.float32)

    width, height = size
    return ramp(height)[:, None] * ramp(width)[None, :]


def paste(
    source: np.ndarray, out: np.ndarray, crop: np.ndarray, mask: np.ndarray, matrix: np.ndarray, blend: float = 1.0
) -> Rect | None:
    """Blend `crop` (aligned by `matrix`) back into `out` over `source` through the inverse transform:
    out = source·(1 − m) + crop·m with m = mask·blend, only inside the crop's footprint, which is returned."""
    height, width = source.shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    ch, cw = crop.shape[:2]
    corners = np.array([[0, 0, 1], [cw, 0, 1], [0, ch, 1], [cw, ch, 1]], np.float64) @ inverse.T
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    back = cv2.warpAffine(crop, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    weight = cv2.warpAffine(mask, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    weight = (np.clip(weight, 0.0, 1.0) * blend)[..., None]
    under = source[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(under + (back.astype(np.float32) - under) * weight + 0.5, 0, 255).astype(np.uint8)
    return (int(x0), int(y0), int(x1), int(y1))


@dataclass
class OutputBuffer:
    """A processor's own output frame. Upstream buffers must never be written (the next frame would
    start from this frame's result), so the processor's output lives here; each frame only what
    changed upstream (`dirty`) and what it pasted last time is refreshed from the input."""

    array: np.ndarray | None = None
    last: Rect | None = None

    def refresh(self, frame: np.ndarray, dirty: Rect | None) -> Rect | None:
        """Make the buffer equal the input frame everywhere this processor will not paste; returns the
        refreshed rectangle (the whole frame when the buffer is new or the change is unknown)."""
        height, width = frame.shape[:2]
        if self.array is None or self.array.shape != frame.shape or dirty is None:
            self.array = frame.copy()
            return (0, 0, width, height)
        rect = union_rect(dirty, self.last)
        if rect is None:
            return None
        x0, y0, x1, y1 = max(rect[0], 0), max(rect[1], 0), min(rect[2], width), min(rect[3], height)
        if x1 > x0 and y1 > y0:
            self.array[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
        return (x0, y0, x1, y1)

    def done(self, pasted: Rect | None, refreshed: Rect | None) -> Rect | None:
        """Remember this frame's paste; returns the dirty rectangle to hand downstream."""
        self.last = pasted
        return union_rect(refreshed, pasted)
