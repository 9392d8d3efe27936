"""The body continued past the photo's side edge, painted once into a scene's background.

Why: a head-and-shoulders photo ends at its border; where that border lies inside the canvas (the
`web` scene's person stands right of centre), the shoulders stop in a line, and faded out they
dissolve within 1/12 of the square, which still reads as "the photo ends here". The
body is continued outward instead: the person's colours just inside the edge are carried out row by
row along the shoulder's slope (measured from the matte's outline at the edge), smoothed more the
further out they go, and faded to nothing over `reach` × the square. It is painted under the faded
square edge, so the photo cross-fades into its own continuation.
"""

from __future__ import annotations

import cv2
import numpy as np

REACH = 0.22  # × the square's side: how far past the photo's edge the body fades out
SAMPLE = 0.04  # × the side: the band just inside the fade whose colours are carried out
MAX_SLOPE = 0.7  # rows per column (35°): a steeper line at the edge is the collar, not the shoulder


def _slope(alpha: np.ndarray, columns: np.ndarray) -> float:
    """How many rows the shoulder's top drops per column moving outward (≥ 0), from the first row
    where the matte passes 0.5 in the lower half of `columns` (ordered from the edge inward)."""
    half = alpha.shape[0] // 2
    tops = []
    for column in columns:
        below = np.nonzero(alpha[half:, column] > 0.5)[0]
        if len(below):
            tops.append(half + below[0])
    if len(tops) < 4:
        return 0.0
    fit = np.polyfit(np.arange(len(tops), dtype=np.float64), np.array(tops, np.float64), 1)[0]
    return float(np.clip(-fit, 0.0, MAX_SLOPE))  # the top rises moving inward: it drops moving outward


def continue_body(
    canvas: np.ndarray, portrait: np.ndarray, alpha: np.ndarray, left: int, top: int, inset: int
) -> np.ndarray:
    """`canvas` with the person continued past each side edge of the square that lies inside it.

    `portrait` (side × side, BGR) and `alpha` (its person matte, 0..1) sit at (`left`, `top`);
    `inset`: the width of the square's edge fade (the continuation starts under it)."""
    side = portrait.shape[0]
    height, width = canvas.shape[:2]
    out = canvas.astype(np.float32)
    reach = max(2, round(REACH * side))
    band = max(2, round(SAMPLE * side))
    rows = np.arange(side, dtype=np.float32)
    for outward in (-1, 1):
        edge = left if outward < 0 else left + side
        if not 0 < edge < width:
            continue
        inner = np.arange(inset, inset + band) if outward < 0 else side - 1 - np.arange(inset, inset + band)
        colour = np.median(portrait[:, inner].astype(np.float32), axis=1)
        weight = alpha[:, inner].mean(axis=1)
        half = side // 2
        solid = np.nonzero(weight[half:] > 0.5)[0]
        if not len(solid):
            continue  # no shoulder reaches this edge
        weight[: half + solid[0]] = 0.0  # only the body below the shoulder's top, not the backdrop above
        full = np.nonzero(weight[half:] > 0.95)[0]
        first = half + (full[0] if len(full) else solid[0])
        colour[:first] = colour[first]  # the outline's mixed pixels would draw a light line along the top
        slope = _slope(alpha, inner)
        start = inner[0]
        for step in range(1, inset + reach):
            x = left + start + outward * step
            if not 0 <= x < width:
                break
            fade = 1.0 - step / (inset + reach)
            shifted = rows - slope * step  # the row of the edge band this canvas row continues
            sigma = 1.0 + 0.08 * step  # further out, less of the folds' detail
            size = 2 * int(np.ceil(3 * sigma)) + 1
            column = cv2.GaussianBlur(colour.reshape(-1, 1, 3), (1, size), 0, sigmaY=sigma).reshape(-1, 3)
            a = np.interp(shifted, rows, weight, left=0.0, right=weight[-1]) * fade
            c = np.stack([np.interp(shifted, rows, column[:, k]) for k in range(3)], axis=1)
            y0, y1 = max(top, 0), min(top + side, height)
            a, c = a[y0 - top : y1 - top, None], c[y0 - top : y1 - top]
            out[y0:y1, x] = out[y0:y1, x] * (1 - a) + c * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
