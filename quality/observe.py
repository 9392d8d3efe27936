"""One streamed pass over a video: the per-frame observations every monitor is computed from.

Frames are decoded by ffmpeg at `analysis_height` and never kept; the face is tracked from frame to
frame (a full detection only on the first frame or when the mesh loses confidence) and each frame is
handed to every monitor's observer (quality/monitor.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config.settings import QualitySettings
from media.errors import MediaError
from media.video import ProbeResult, probe, read_frames
from quality.errors import QualityError
from quality.monitor import FrameView, IdentityProbe, ObserveSetup, SeriesObserver
from quality.registry import monitors
from vision import topology as topo
from vision.analysis import Face, FaceAnalyser
from vision.face_features import face_features

NO_POSE = (np.nan, np.nan, np.nan)

__all__ = ["FrameObserver", "IdentityProbe", "Observations", "analysis_size", "observe_video"]


@dataclass(frozen=True)
class Observations:
    """The shared per-frame series (nan where no face was found), each monitor's own series, and what
    the pass learnt about the file."""

    info: ProbeResult
    count: int
    lip_gap: np.ndarray  # inner-lip gap / mouth width
    pose: np.ndarray  # (frames, 3): yaw, pitch, roll in degrees
    series: dict[str, dict[str, np.ndarray]]  # monitor name -> its series

    @property
    def face_found(self) -> np.ndarray:
        return ~np.isnan(self.lip_gap)


def analysis_size(info: ProbeResult, analysis_height: int) -> tuple[int, int]:
    """The short side at `analysis_height` (a 9:16 video's face is as large as a 16:9 one's)."""
    short = min(info.width, info.height)
    scale = min(analysis_height, short) / short
    return int(round(info.width * scale / 2) * 2), int(round(info.height * scale / 2) * 2)


def head_pitch(landmarks: np.ndarray) -> float:
    vertical = landmarks[topo.CHIN] - landmarks[topo.FOREHEAD]
    return float(np.degrees(np.arctan2(-vertical[2], vertical[1])))


class FrameObserver:
    """The per-frame pass, fed one analysis-size frame at a time: from a decoded file
    (`observe_video`) or from the frames a render hands to its encoder (the gate runs while the
    video is being encoded). Tracks the face once per frame, keeps the series every monitor shares
    (mouth opening, head pose) and hands the frame to each monitor's observer. Keeps only the
    per-frame numbers, never the frames."""

    def __init__(
        self,
        analyser: FaceAnalyser,
        fps: float,
        identity: IdentityProbe | None = None,
        start: int = 0,
        limits: QualitySettings | None = None,
    ) -> None:
        self.analyser = analyser
        self.fps = fps
        self.start = start  # index of the first frame in the whole video (a chunk of a long render)
        setup = ObserveSetup(fps, start, identity)
        self.observers: dict[str, SeriesObserver] = {}  # monitor name -> its observer of this video
        for judged in monitors(limits or QualitySettings()):
            observer = judged.monitor.observer(setup)
            if observer is not None:
                self.observers[judged.monitor.name] = observer
        self.gaps: list[float] = []
        self.poses: list[tuple[float, float, float]] = []
        self.previous: Face | None = None

    @property
    def count(self) -> int:
        return len(self.gaps)

    def add(self, frame: np.ndarray) -> None:
        face = self.analyser.track(frame, self.previous)
        self.previous = face
        view = FrameView(frame, self.start + self.count, face, None)
        if face is not None:
            # The eyes' contrast needs the grey image: converted once here, for the features and the monitors.
            view.features = face_features(face.landmarks, view.grey)
            self.gaps.append(view.features.lip_gap)
            self.poses.append((view.features.yaw, head_pitch(face.landmarks), view.features.roll))
        else:
            self.gaps.append(np.nan)
            self.poses.append(NO_POSE)
        for observer in self.observers.values():
            observer.add(view)

    def export(self) -> dict[str, np.ndarray]:
        """The per-frame numbers as arrays (what a chunk process hands back to its render)."""
        shared = {"gaps": np.asarray(self.gaps, float), "poses": np.asarray(self.poses, float).reshape(-1, 3)}
        own = {
            f"{name}.{series}": values
            for name, observer in self.observers.items()
            for series, values in observer.export().items()
        }
        return shared | own

    def extend(self, exported: dict[str, np.ndarray]) -> None:
        """Append another observer's numbers for the frames that follow this one's (the next chunk)."""
        self.gaps.extend(list(exported["gaps"]))
        self.poses.extend([tuple(pose) for pose in exported["poses"]])
        for name, observer in self.observers.items():
            prefix = f"{name}."
            observer.extend({key[len(prefix) :]: value for key, value in exported.items() if key.startswith(prefix)})
        self.previous = None

    def result(self, info: ProbeResult, name: str) -> Observations:
        if self.count == 0:
            raise MediaError(f"{name} has no decodable frames; it may be corrupt")
        observed = Observations(
            info=info,
            count=self.count,
            lip_gap=np.asarray(self.gaps, float),
            pose=np.asarray(self.poses, float),
            series={name: observer.export() for name, observer in self.observers.items()},
        )
        if not observed.face_found.any():
            raise QualityError(f"no face found in any frame of {name}; this is not a talking-head video")
        return observed


def observe_video(
    path: Path,
    analyser: FaceAnalyser,
    analysis_height: int,
    identity: IdentityProbe | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    limits: QualitySettings | None = None,
) -> Observations:
    path = Path(path)
    if not path.is_file():
        raise QualityError(f"video not found: {path}; check the path")
    info = probe(path, count_frames=False)  # the count is only a progress estimate; frames are counted as read
    if info.audio_codec is None:
        raise QualityError(f"{path.name} has no audio track; lip-sync cannot be measured without the speech")
    width, height = analysis_size(info, analysis_height)
    expected = max(info.frames, 1)
    observer = FrameObserver(analyser, info.fps, identity, limits=limits)
    for frame in read_frames(path, width, height):
        observer.add(frame)
        if on_frame is not None:
            on_frame(observer.count, expected)
    return observer.result(info, path.name)
