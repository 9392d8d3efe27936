"""What the warp shows where it samples beyond the photo's edge: backdrop, not a mirrored copy of hair.

Why: when the head shrinks, nods or moves down, output pixels above it sample the rest pose above the
photo's top edge (the head's weight is 1 there: the person reaches the edge of the photo a few pixels
above the hair). A mirrored border then pulls the hair back in as a floating copy at the frame's top
edge (issue 26). What lies beyond an edge is whatever that edge shows: the backdrop where the edge is
backdrop (the photo's clean plate, `vision.matte.clean_plate`, or the scene behind a cut-out), the
person where the person is cut by the edge (the suit at the bottom keeps its mirrored continuation,
as before). The fill fades in over `FADE` pixels past the edge, so the photo's own backdrop meets the
plate without a line.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.matte import clean_plate, person_alpha

FADE = 4.0  # work pixels past the photo's edge over which the mirrored border gives way to the fill
ROW = 1024  # points per row of the sampling map (`_at`)
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
        photo's edge by what the edge continues into. Only those pixels are touched (most frames: none)."""
        height, width = self.shape
        x, y = sample[..., 0], sample[..., 1]
        if x.min() >= 0 and y.min() >= 0 and x.max() <= width - 1 and y.max() <= height - 1:
            return
        # The map is smooth: the rows with a sample near the edge are found on every 4th pixel, and
        # only those rows are measured exactly (a head shrinking leaves a band at the top).
        near = (self.beyond(sample[::4, ::4]) > -8.0).any(axis=1)
        rows = np.flatnonzero(np.repeat(near, 4)[: sample.shape[0]])
        rows = np.unique(np.clip(np.concatenate([rows - 4, rows, rows + 4]), 0, sample.shape[0] - 1))
        share = np.clip(self.beyond(sample[rows]) / FADE, 0.0, 1.0)
        band_rows, cols = np.nonzero(share > 0)
        if not band_rows.size:
            return
        where = (rows[band_rows], cols)
        plate, alpha = _at(self.plate, sample[where]), _at(self.alpha, sample[where])[:, None]
        mirrored = warped[where].astype(np.float32)
        fill = alpha * mirrored + (1.0 - alpha) * plate
        t = share[band_rows, cols][:, None]
        warped[where] = np.clip(mirrored * (1.0 - t) + fill * t + 0.5, 0, 255).astype(np.uint8)

    def uncover(self, warped: np.ndarray, stray: np.ndarray, origin: tuple[int, int]) -> None:
        """Put the backdrop, in place, where `warped` (its top-left pixel at `origin` of the photo)
        shows what the head's motion has carried away (`stray`, 0..1, `HeadMotion.stray`, which
        marks only samples on the head): the backdrop does not move, so it is the plate at the pixel
        itself. Not weighted by the matte: a lock's soft edge would stay behind as its outline."""
        where = np.nonzero(stray > 0)
        if not where[0].size:
            return
        share = stray[where][:, None]
        behind = self.plate[where[0] + origin[1], where[1] + origin[0]]
        pixels = warped[where].astype(np.float32)
        warped[where] = np.clip(pixels * (1.0 - share) + behind * share + 0.5, 0, 255).astype(np.uint8)


def _at(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`image` sampled bilinearly at `points` (n, 2), edges replicated: (n,) or (n, channels).
    cv2.remap wants a 2D map under 32767 on a side, so the points are laid out in rows of ROW."""
    count = len(points)
    rows = -(-count // ROW)
    grid = np.zeros((rows * ROW, 2), np.float32)
    grid[:count] = points
    out = cv2.remap(image, grid.reshape(rows, ROW, 2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * ROW, *image.shape[2:])[:count]
