"""The person in a portrait, separated from its backdrop without any model weights (GrabCut).

Why: head motion must carry the whole head, hair included, and nothing of the background; an
ellipse around the face either cuts through big hair (which then smears) or drags the backdrop
along. GrabCut, seeded with what must be the person (the face, the neck and chest below it) and what
must be backdrop (the top and upper side borders of the photo), finds the rest from the colours.
It runs once per avatar version (the avatar analysis is cached), at half the work resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision import topology as topo

ITERATIONS = 4
MIN_SHARE, MAX_SHARE = 0.05, 0.9  # of the image: outside this the segmentation is not trusted


def _ellipse(mask: np.ndarray, centre: np.ndarray, axes: np.ndarray, value: int) -> None:
    size = (max(int(axes[0]), 1), max(int(axes[1]), 1))
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), size, 0, 0, 360, value, -1)


def person_mask(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """uint8 mask (255 = person) of the image's size, or None when the backdrop cannot be told apart."""
    height, width = image.shape[:2]
    scale = 0.5
    small = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    lm = landmarks[:, :2] * scale
    oval = lm[list(topo.FACE_OVAL)]
    centre = oval.mean(0)
    half = (oval.max(0) - oval.min(0)) / 2
    chin = lm[topo.CHIN]
    seeds = np.full(small.shape[:2], cv2.GC_PR_BGD, np.uint8)
    _ellipse(seeds, centre - [0, 0.25 * half[1]], half * [1.9, 2.0], cv2.GC_PR_FGD)  # the head with its hair
    shoulders, neck_top = chin[1] + 0.6 * half[1], small.shape[0]
    body = np.array(
        [
            [chin[0] - 3.5 * half[0], neck_top],
            [chin[0] - 1.2 * half[0], shoulders],
            [chin[0] + 1.2 * half[0], shoulders],
            [chin[0] + 3.5 * half[0], neck_top],
        ]
    )
    cv2.fillPoly(seeds, [np.round(body).astype(np.int32)], cv2.GC_PR_FGD)
    face = np.round(oval + (centre - oval) * 0.15).astype(np.int32)  # the face, a little inside its outline
    cv2.fillPoly(seeds, [face], cv2.GC_FGD)
    left, right, low = chin[0] - 0.35 * half[0], chin[0] + 0.35 * half[0], chin[1] + 0.5 * half[1]
    neck = np.array([[left, chin[1]], [right, chin[1]], [right, low], [left, low]])
    cv2.fillPoly(seeds, [np.round(neck).astype(np.int32)], cv2.GC_FGD)
    border = max(2, round(0.02 * small.shape[1]))
    above_chin = int(max(chin[1], 0))
    seeds[:border, :] = cv2.GC_BGD
    seeds[:above_chin, :border] = cv2.GC_BGD
    seeds[:above_chin, -border:] = cv2.GC_BGD
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(small, seeds, None, background, foreground, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    person = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(person, connectivity=8)
    if count <= 1:
        return None
    row, column = int(np.clip(centre[1], 0, small.shape[0] - 1)), int(np.clip(centre[0], 0, small.shape[1] - 1))
    face_label = labels[row, column]
    if face_label == 0:
        return None
    person = (labels == face_label).astype(np.uint8)
    # Fill holes (dark clothing, shadows) that GrabCut gave to the backdrop inside the person.
    inverse = 1 - person
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    for label in range(1, count):
        x, y, w, h, _area = stats[label]
        touches = x == 0 or y == 0 or x + w == inverse.shape[1] or y + h == inverse.shape[0]
        if not touches:
            person[labels == label] = 1
    share = float(person.mean())
    if not MIN_SHARE <= share <= MAX_SHARE:
        return None
    full = cv2.resize(person * 255, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(full >= 128, 255, 0).astype(np.uint8)
