"""What the warp shows where it samples beyond the photo's edge: backdrop, not a mirrored copy of hair.

Why: when the head shrinks, nods or moves down, output pixels above it sample the rest pose above the
photo's top edge (the head's weight is 1 there: the person reaches the edge of the photo a few pixels
above the hair). A mirrored border then pulls the hair back in as a floating copy at the frame's top
edge (issue 26). What lies beyond an edge is whatever that edge shows: the backdrop where the edge is
backdrop (the photo's clean plate, `fusion.matte.clean_plate`, or the scene behind a cut-out), the
person where the person is cut by the edge (the suit at the bottom keeps its mirrored continuation,
as before). The fill fades in over `FADE` pixels past the edge, so the photo's own backdrop meets the
plate without a line.
"""

from __future__ import annotations

import cv2
import numpy as np

from fusion.matte import clean_plate, person_alpha

FADE = 4.0  # work pixels past the photo's edge over which the mirrored border gives way to the fill
MATTE_FEATHER = 2.5  # work pixels: a binary (GrabCut) mask softened like the engine's cut-out


class OutsideFill:
    """The photo's backdrop and person alpha, sampled where a backward map leaves the photo."""

    def __init__(self, image: np.ndarray, person: np.ndarray, backdrop: np.ndarray | None = None) -> None:
        alpha = person_alpha(person, MATTE_FEATHER)
        self.alpha = alpha.astype(np.float32)
        plate = clean_plate(image, alpha) if backdrop is None else backdrop
        self.plate = plate.astype(np.float32)
        self.shape = image.shape[:2]

    def beyond(self, sample: np.ndarray) -> np.ndarray:
        """How far (px) each sample of the map (h, w, 2) lies outside the photo (≤ 0: inside)."""
        height, width = self.shape
        x, y = sample[..., 0], sample[..., 1]
        return np.maximum(np.maximum(-x, x - (width - 1)), np.maximum(-y, y - (height - 1)))

    def apply(self, warped: np.ndarray, sample: np.ndarray) -> None:
        """Replace, in place, what `warped` (remapped with `sample`, mirrored borders) shows beyond the
        photo's edge by what the edge continues into."""
        share = np.clip(self.beyond(sample) / FADE, 0.0, 1.0)
        rows, cols = np.flatnonzero(share.any(axis=1)), np.flatnonzero(share.any(axis=0))
        if not rows.size:
            return
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        part = sample[y0:y1, x0:x1]
        plate = cv2.remap(self.plate, part, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.remap(self.alpha, part, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[..., None]
        view = warped[y0:y1, x0:x1]
        mirrored = view.astype(np.float32)
        fill = alpha * mirrored + (1.0 - alpha) * plate
        t = share[y0:y1, x0:x1, None]
        view[:] = np.clip(mirrored * (1.0 - t) + fill * t + 0.5, 0, 255).astype(np.uint8)
