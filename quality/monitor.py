"""The contract of a quality monitor: observe each frame → per-frame series → scores → failures.

Why a contract: a monitor used to be spread over the observer, the scorer, the gate, the settings and
the report; now it is one module in quality/ that exposes `MONITOR`, found by its settings section's
name (quality/registry.py). The frame pass (quality/observe.py) analyses each frame's face once and
hands every monitor the same `FrameView`; a monitor keeps only numbers, never frames, so a long
render's chunks can hand their series to the process that judges the whole video.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np

from config.settings import MonitorLimits
from quality.scores import Scores
from vision.analysis import Face
from vision.face_features import FaceFeatures
from vision.identity import IdentityEmbedder

SHORTEST_JUDGED_FRAMES = 40  # a correlation over fewer frames than a short sentence has is noise


@dataclass
class FrameView:
    """One analysis-size frame as every monitor sees it: the face tracked in it (None: no face) and
    its features, computed once for all monitors."""

    frame: np.ndarray  # BGR, analysis size
    index: int  # in the whole video (a chunk of a long render starts later)
    face: Face | None
    features: FaceFeatures | None

    @cached_property
    def grey(self) -> np.ndarray:
        return cv2.cvtColor(self.frame, cv2.COLOR_BGR2GRAY)


@dataclass(frozen=True)
class IdentityProbe:
    """How to sample identity: the embedder, the avatar's enrolled embedding, samples per second."""

    embedder: IdentityEmbedder
    reference: np.ndarray
    sample_fps: float


@dataclass(frozen=True)
class ObserveSetup:
    """What a monitor's per-video observer may need: the frame rate, the first frame's index, and the
    avatar's identity reference (None: no avatar, or not measured)."""

    fps: float
    start: int = 0
    identity: IdentityProbe | None = None


@dataclass
class SeriesObserver:
    """A monitor's per-video state: named per-frame series, appended to by `add` (a series may be
    sparse, e.g. identity is sampled every few frames)."""

    SERIES: ClassVar[tuple[str, ...]] = ()
    values: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.SERIES:
            self.values.setdefault(name, [])

    def add(self, view: FrameView) -> None:
        raise NotImplementedError

    def export(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values, float) for name, values in self.values.items()}

    def extend(self, exported: Mapping[str, np.ndarray]) -> None:
        """Append the series another observer measured on the frames that follow (the next chunk)."""
        for name in self.SERIES:
            self.values[name].extend(list(exported[name]))


@dataclass(frozen=True)
class ScoreContext:
    """What every monitor is scored with, besides its own series: the face found per frame, the head
    pose and the pose gate's frames, the mouth opening with gated frames interpolated (or dropped),
    the audio, and what the video is compared with."""

    fps: float
    count: int
    found: np.ndarray  # bool per frame
    pose: np.ndarray  # (frames, 3): yaw, pitch, roll in degrees
    gated: np.ndarray  # bool per frame: turned beyond the pose gate
    lip_gap: np.ndarray  # inner-lip gap / mouth width, gated frames interpolated or nan
    audio: np.ndarray
    audio_rate: int
    bilabial_spans: list[tuple[float, float]] | None = None
    measure_lipsync: bool = True
    reference_lab: np.ndarray | None = None  # the avatar photo's skin colour

    @property
    def duration_s(self) -> float:
        return self.count / max(self.fps, 1e-6)


class Monitor(Protocol):
    """One quality monitor. `name` is its settings section (`quality.<name>`), its module in quality/
    and its field in the report; `limits` is that section."""

    name: str

    def observer(self, setup: ObserveSetup) -> SeriesObserver | None:
        """A fresh per-video observer, or None when the monitor needs only the shared series."""
        ...

    def score(self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: Any) -> Scores:
        """The monitor's figures from its series (measuring never decides: scores are kept apart from
        the thresholds' verdict, so a new threshold can be tried on old scores)."""
        ...

    def failures(self, scores: Any, context: ScoreContext, limits: Any) -> list[str]:
        """One sentence per broken threshold, naming the measured value and the threshold."""
        ...


__all__ = ["FrameView", "IdentityProbe", "Monitor", "MonitorLimits", "ObserveSetup", "ScoreContext", "SeriesObserver"]
