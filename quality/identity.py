"""Identity monitor: dlib descriptor distances of sampled frames to the avatar's enrolled embedding.

Alarm frames are counted at `max_distance` (dlib's calibration: the same person below 0.6); a video
fails when more than `max_alarm_ratio` of its samples alarm. One descriptor costs ~65-80 ms, so
frames are sampled at `sample_fps`, at the same frame indices however a long render is cut in chunks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from config.settings import IdentityLimits
from quality.monitor import FrameView, IdentityProbe, ObserveSetup, ScoreContext, SeriesObserver
from quality.scores import IdentityScores
from vision.identity import identity_distance


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


def identity_failures(scores: IdentityScores, limits: IdentityLimits) -> list[str]:
    if not scores.sampled_frames or scores.alarm_ratio is None or scores.alarm_ratio <= limits.max_alarm_ratio:
        return []
    return [
        f"identity: {scores.alarm_frames} of {scores.sampled_frames} sampled frames differ from the avatar "
        f"(distance up to {scores.max_distance:.2f} > {limits.max_distance})"
    ]


class IdentityObserver(SeriesObserver):
    """Embeds the face of every `step`-th frame of the whole video and keeps its distance to the avatar."""

    SERIES: ClassVar[tuple[str, ...]] = ("distances",)

    def __init__(self, probe: IdentityProbe, fps: float) -> None:
        super().__init__()
        self.probe = probe
        self.step = max(1, round(fps / max(probe.sample_fps, 1e-6)))

    def add(self, view: FrameView) -> None:
        if view.face is None or view.index % self.step:
            return
        embedding = self.probe.embedder.embed(view.frame, view.face.landmarks)
        self.values["distances"].append(identity_distance(embedding, self.probe.reference))


@dataclass(frozen=True)
class IdentityMonitor:
    name: str = "identity"

    def observer(self, setup: ObserveSetup) -> IdentityObserver | None:
        return IdentityObserver(setup.identity, setup.fps) if setup.identity is not None else None

    def score(self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: IdentityLimits) -> IdentityScores:
        return identity_scores(np.asarray(series.get("distances", ()), float), limits.max_distance)

    def failures(self, scores: IdentityScores, context: ScoreContext, limits: IdentityLimits) -> list[str]:
        return identity_failures(scores, limits)


MONITOR = IdentityMonitor()
