"""Identity monitor: dlib descriptor distances of sampled frames to the avatar's enrolled embedding.

Alarm frames are counted at `alarm_distance` (dlib's calibration: the same person below 0.6); how
many alarms a video may have is the gate's business."""

from __future__ import annotations

import numpy as np

from quality.scores import IdentityScores


def identity_scores(distances: np.ndarray, alarm_distance: float) -> IdentityScores:
    if not distances.size:
        return IdentityScores(sampled_frames=0)
    over = distances > alarm_distance
    return IdentityScores(
        sampled_frames=int(distances.size),
        max_distance=round(float(distances.max()), 3),
        mean_distance=round(float(distances.mean()), 3),
        p99_distance=round(float(np.percentile(distances, 99)), 3),
        min_similarity=round(float(1 - distances.max()), 3),
        alarm_frames=int(over.sum()),
        alarm_ratio=round(float(over.mean()), 3),
    )
