"""Artifact monitor: what a viewer does not forgive, measured per frame from the pixels.

- Tears and seams: a block of the head that moves on its own shows, between two frames, as motion
  that jumps across a straight line. The optical flow of the upper head (forehead, the hair just
  above it, between the temples; the eyes left out) is measured between consecutive frames, and its gradient is smoothed
  along rows and along columns over 0.45 of the judged width, minus the same smoothed over a square:
  a straight discontinuity keeps its strength, the smooth change of a rotating or nodding head and
  the blob-shaped change of a raised brow do not. The whole head's own motion (an affine map fitted
  to its rigid landmarks in the two frames) is taken out first: a recorded driver moves the head up
  to 30 px per 1080p frame, rolls it ±12° and leans it in, and Farneback's flow errors on such
  displacements read as lines (measurements: docs/decisions.md, "Monitors").
  (The lower face is left out: the jaw's motion is steep by nature; its artifacts are judged by the
  mouth interior.)
- Mouth interior: where the mouth is open, the share of near-black pixels inside it, and the share
  of near-black pixels along the inner lips (a drawn black outline).
- Frozen face: a chin that does not follow a moving mouth; eyes that never blink in a long video.
Each figure goes to the gate (`quality.gate`) with the frames where it was worst.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from config.settings import ArtifactLimits
from quality.monitor import SHORTEST_JUDGED_FRAMES, FrameView, ObserveSetup, ScoreContext, SeriesObserver
from quality.scores import ArtifactScores
from vision import topology as topo

BLACK_LEVEL = 28  # grey level under which an open mouth's pixel counts as near-black
SEAM_MARGIN = 12  # px (analysis resolution) of context around the head for the optical flow
SEAM_EDGE = 16  # px at the image's own edges where the flow is not judged
# The upper head's rigid points: the oval from temple to temple over the forehead, the eye corners, the
# nose bridge. Brows and lids are left out (they move on their own).
HEAD_POINTS = (10, 338, 297, 332, 284, 251, 389, 356, 127, 162, 21, 54, 103, 67, 109, 33, 133, 263, 362, 168, 6, 197, 1)
LINE_SHARE = 0.45  # the line filter's length, as a share of the judged width (a tear crosses the forehead)
MOTION_TOLERANCE = 0.1  # the seam score is divided by 1 + this × the median flow left after the head's own motion


def _box(points: np.ndarray, pad: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    lo, hi = points.min(0), points.max(0)
    size = hi - lo
    x0, y0 = np.maximum(np.floor(lo - pad * size), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(hi + pad * size), [shape[1], shape[0]]).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def _outline(landmarks: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([landmarks[list(upper), :2], landmarks[list(lower), :2][::-1]])


def straight_discontinuity(flow: np.ndarray, length: int) -> np.ndarray:
    """Per pixel: how much of the flow's change lies on a straight line (rows or columns). A median
    filter first removes the flow's point outliers (a blob of bad flow is not a line)."""
    flow = np.dstack([cv2.medianBlur(np.ascontiguousarray(flow[..., c]), 5) for c in range(2)])
    dx = cv2.Sobel(flow, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    dy = cv2.Sobel(flow, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    across_rows = np.sqrt((dy**2).sum(axis=2))  # a horizontal seam: the flow jumps from row to row
    across_columns = np.sqrt((dx**2).sum(axis=2))
    square = (length, length)
    horizontal = cv2.blur(across_rows, (length, 1)) - cv2.blur(across_rows, square)
    vertical = cv2.blur(across_columns, (1, length)) - cv2.blur(across_columns, square)
    return np.maximum(horizontal, vertical)


def head_motion(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The affine map (2×3) that best carries the upper head's landmarks of one frame onto the next:
    the whole head's translation, roll, lean-in scaling and (to first order) nod and turn."""
    ids = list(HEAD_POINTS)
    source, target = before[ids, :2].astype(np.float64), after[ids, :2].astype(np.float64)
    design = np.column_stack([source, np.ones(len(ids))])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.T.astype(np.float32)


def _follow_head(previous: np.ndarray, before: np.ndarray | None, after: np.ndarray) -> np.ndarray:
    """The previous frame moved as the whole head moved since (identity without its landmarks).

    A tear is two parts of the head moving differently; the head moving as a whole, however fast, is
    not. With the head's own motion taken out first, the optical flow left over is small (Farneback's
    errors grow with the displacement it has to find) and a torn band still stands out in it."""
    if before is None or before.shape != after.shape:
        return previous
    return cv2.warpAffine(previous, head_motion(before, after), previous.shape[::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


class ArtifactObserver(SeriesObserver):
    """Fed every analysed frame in order: per frame the seam score, the mouth interior's and inner
    lips' near-black shares, the chin's distance from the nose, and the eyes' contrast."""

    SERIES: ClassVar[tuple[str, ...]] = ("seam", "black_share", "rim_darkness", "chin", "eyes")

    def __init__(self) -> None:
        super().__init__()
        self.previous: np.ndarray | None = None  # the previous frame, grey (uint8: the optical flow wants it)
        self.previous_landmarks: np.ndarray | None = None

    def add(self, view: FrameView) -> None:
        grey = view.grey
        values = self.values
        if view.face is None or view.features is None:
            for name in self.SERIES:
                values[name].append(np.nan)
            self.previous, self.previous_landmarks = grey, None
            return
        landmarks = view.face.landmarks
        values["seam"].append(self._seam(grey, landmarks))
        black, rim = self._interior(grey, landmarks, view.features.lip_gap)
        values["black_share"].append(black)  # nan where the mouth is closed
        values["rim_darkness"].append(rim)
        io = float(np.linalg.norm(landmarks[topo.LEFT_EYE_OUTER, :2] - landmarks[topo.RIGHT_EYE_OUTER, :2]))
        chin = float(np.linalg.norm(landmarks[topo.CHIN, :2] - landmarks[topo.NOSE_TIP, :2]))
        values["chin"].append(chin / max(io, 1e-6))  # chin to nose tip, per interocular distance
        values["eyes"].append(view.features.eye_contrast)  # grey-level spread inside the eyes (dips in a blink)
        self.previous, self.previous_landmarks = grey, landmarks

    def _seam(self, grey: np.ndarray, landmarks: np.ndarray) -> float:
        """Strongest straight discontinuity of the upper head's motion since the previous frame."""
        if self.previous is None or self.previous.shape != grey.shape:
            return np.nan
        # Inside the head only: at its outline the head moves against a still backdrop, a real
        # discontinuity. Forehead and the hair just above it, between the temples, down to the nose.
        oval = landmarks[list(topo.FACE_OVAL), :2]
        (left, top), (right, chin) = oval.min(0), oval.max(0)
        inset = 0.08 * (right - left)
        x0, x1 = int(max(left + inset, 0)), int(min(right - inset, grey.shape[1]))
        y0 = int(max(top - 0.15 * (chin - top), 0))
        bottom = int(min(landmarks[topo.NOSE_TIP, 1], grey.shape[0]))
        if x1 - x0 < 24 or bottom - y0 < 16:
            return np.nan
        # Flow is estimated on a wider crop and judged inside it: at a crop's edge, content entering
        # from outside makes the flow jump along that (straight) edge.
        margin = SEAM_MARGIN
        fx0, fy0 = max(x0 - margin, 0), max(y0 - margin, 0)
        fx1, fy1 = min(x1 + margin, grey.shape[1]), min(bottom + margin, grey.shape[0])
        before = _follow_head(self.previous, self.previous_landmarks, landmarks)[fy0:fy1, fx0:fx1]
        after = grey[fy0:fy1, fx0:fx1]
        # 2 levels, a 7 px window: once the head's own motion is taken out only small displacements are
        # left, and the smaller window keeps a tear's step sharp (docs/decisions.md, "Monitors").
        flow = cv2.calcOpticalFlowFarneback(before, after, None, 0.5, 2, 7, 2, 5, 1.1, 0)
        score = straight_discontinuity(flow, max(9, round(LINE_SHARE * (x1 - x0))))
        # Flow errors grow with the motion itself; a tear's jump does not need fast motion to show.
        score /= 1.0 + MOTION_TOLERANCE * float(np.median(np.linalg.norm(flow, axis=2)))
        keep = np.zeros(score.shape, bool)
        keep[max(y0 - fy0, SEAM_EDGE) : min(bottom - fy0, score.shape[0] - SEAM_EDGE),
             max(x0 - fx0, SEAM_EDGE) : min(x1 - fx0, score.shape[1] - SEAM_EDGE)] = True  # fmt: skip
        for ids in (topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER, topo.LEFT_EYE_UPPER + topo.LEFT_EYE_LOWER):
            bx0, by0, bx1, by1 = _box(landmarks[list(ids), :2] - [fx0, fy0], 0.3, score.shape)
            keep[by0:by1, bx0:bx1] = False  # eyelids close over the eye: a discontinuity by nature
        return float(np.percentile(score[keep], 99.5)) if keep.any() else np.nan

    def _interior(self, grey: np.ndarray, landmarks: np.ndarray, lip_gap: float) -> tuple[float, float]:
        """(share of near-black pixels inside the open mouth, share of near-black pixels along its
        inner lips), nan when the mouth is closed."""
        if lip_gap < 0.08:
            return np.nan, np.nan
        inner = _outline(landmarks, topo.LIPS_INNER_UPPER, topo.LIPS_INNER_LOWER)
        x0, y0, x1, y1 = _box(inner, 0.3, grey.shape)
        crop = grey[y0:y1, x0:x1]
        if crop.size < 64:
            return np.nan, np.nan
        points = np.round((inner - [x0, y0]) * 4).astype(np.int32)
        opening = np.zeros(crop.shape, np.uint8)
        cv2.fillPoly(opening, [points], 1, cv2.LINE_8, shift=2)
        rim = np.zeros(crop.shape, np.uint8)
        cv2.polylines(rim, [points], True, 1, 3, cv2.LINE_8, shift=2)
        if opening.sum() < 6 or rim.sum() < 6:
            return np.nan, np.nan
        dark = crop < BLACK_LEVEL
        return float(dark[opening > 0].mean()), float(dark[rim > 0].mean())


def worst_frames(values: np.ndarray, threshold: float) -> tuple[int, int] | None:
    """First and last frame whose value breaks `threshold` (None if none does)."""
    over = np.flatnonzero(np.nan_to_num(values, nan=-np.inf) > threshold)
    return (int(over[0]), int(over[-1])) if over.size else None


def chin_follows(chin: np.ndarray, lip_gap: np.ndarray) -> tuple[float, float]:
    """(correlation of the chin's distance from the nose with the mouth opening, the mouth's own
    spread). A real jaw drops with the mouth; a frozen one does not."""
    usable = ~(np.isnan(chin) | np.isnan(lip_gap))
    if usable.sum() < 10:
        return np.nan, 0.0
    spread = float(np.std(lip_gap[usable]))
    if spread < 1e-6 or np.std(chin[usable]) < 1e-6:
        return 0.0, spread
    return float(np.corrcoef(chin[usable], lip_gap[usable])[0, 1]), spread


def blinks(eye_contrast: np.ndarray) -> int:
    """Number of blinks: dips of the grey-level spread inside the eyes well below its median.

    A closed lid brings the spread to 0.72-0.80 of the median on the 360p analysis frames, for only
    1-3 frames of a 120-300 ms blink; open eyes stay within ±3 % (measured on the bench renders).
    The dip must clear 12 % or five median deviations, whichever is larger."""
    values = eye_contrast[~np.isnan(eye_contrast)]
    if values.size < 5:
        return 0
    median = float(np.median(values))
    spread = float(np.median(np.abs(values - median)))
    closed = eye_contrast < median - max(0.12 * median, 5.0 * spread)
    return int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])


def artifact_scores(
    series: Mapping[str, np.ndarray], fps: float, lip_gap: np.ndarray, limits: ArtifactLimits
) -> ArtifactScores:
    """The artifact figures of a video, with the frames where each broke its threshold."""
    corr, spread = chin_follows(series["chin"], lip_gap)
    count = blinks(series["eyes"])
    duration = len(lip_gap) / max(fps, 1e-6)

    def worst(values: np.ndarray) -> float | None:
        return round(float(np.nanmax(values)), 3) if np.isfinite(values).any() else None

    return ArtifactScores(
        seam=worst(series["seam"]),
        seam_frames=worst_frames(series["seam"], limits.seam_max),
        interior_black=worst(series["black_share"]),
        interior_black_frames=worst_frames(series["black_share"], limits.interior_black_max),
        rim_black=worst(series["rim_darkness"]),
        rim_black_frames=worst_frames(series["rim_darkness"], limits.rim_black_max),
        chin_follows_mouth=round(corr, 3) if np.isfinite(corr) else None,
        mouth_motion=round(spread, 4),
        blinks=count,
        blinks_per_minute=round(60.0 * count / duration, 1) if duration > 0 else 0.0,
    )


def _frames(span: tuple[int, int] | None) -> str:
    if span is None:
        return ""
    first, last = span
    return f" at frame {first}" if first == last else f" at frames {first}-{last}"


def artifact_failures(
    scores: ArtifactScores, duration_s: float, limits: ArtifactLimits, frames: int = 10**6
) -> list[str]:
    failures = []
    if scores.seam is not None and scores.seam > limits.seam_max:
        failures.append(
            f"seam or tear in the head{_frames(scores.seam_frames)}: motion jumps across a straight line "
            f"({scores.seam:.2f} > {limits.seam_max})"
        )
    if scores.interior_black is not None and scores.interior_black > limits.interior_black_max:
        failures.append(
            f"mouth interior is a black hole{_frames(scores.interior_black_frames)}: "
            f"{scores.interior_black:.0%} near-black > {limits.interior_black_max:.0%}"
        )
    if scores.rim_black is not None and scores.rim_black > limits.rim_black_max:
        failures.append(
            f"dark outline along the lips{_frames(scores.rim_black_frames)}: "
            f"{scores.rim_black:.0%} of the inner lip line near-black > {limits.rim_black_max:.0%}"
        )
    # A correlation over fewer frames than a short sentence has is noise (a 0.6 s "Hi." gives ±0.25).
    moving = scores.mouth_motion >= limits.frozen_mouth_motion and frames >= SHORTEST_JUDGED_FRAMES
    if moving and scores.chin_follows_mouth is not None and scores.chin_follows_mouth < limits.chin_min_correlation:
        failures.append(
            f"frozen jaw: the chin does not follow the mouth (correlation {scores.chin_follows_mouth:.2f} "
            f"< {limits.chin_min_correlation})"
        )
    if duration_s >= limits.frozen_eyes_after_s and scores.blinks == 0:
        failures.append(f"frozen eyes: no blink in {duration_s:.0f} s (speakers blink every 2-6 s)")
    return failures


@dataclass(frozen=True)
class ArtifactMonitor:
    name: str = "artifacts"

    def observer(self, setup: ObserveSetup) -> ArtifactObserver:
        return ArtifactObserver()

    def score(self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: ArtifactLimits) -> ArtifactScores:
        return artifact_scores(series, context.fps, context.lip_gap, limits)

    def failures(self, scores: ArtifactScores, context: ScoreContext, limits: ArtifactLimits) -> list[str]:
        return artifact_failures(scores, context.duration_s, limits, context.count)


MONITOR = ArtifactMonitor()
