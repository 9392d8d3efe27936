"""One streamed pass over a video: the per-frame observations every monitor is computed from.

Frames are decoded by ffmpeg at `analysis_height` and never kept; the face is tracked from frame to
frame (a full detection only on the first frame or when the mesh loses confidence), and the
identity descriptor (~80 ms each) is computed only every `identity_step` frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media.errors import MediaError
from media.video import ProbeResult, probe, read_frames
from quality.artifacts import ArtifactObserver
from quality.color import skin_lab
from quality.errors import QualityError
from quality.stability import JITTER_POINTS, mean_outside_mouth
from vision import topology as topo
from vision.analysis import Face, FaceAnalyser
from vision.face_features import face_features
from vision.identity import IdentityEmbedder, identity_distance

NO_POSE = (np.nan, np.nan, np.nan)


@dataclass(frozen=True)
class Observations:
    """Per-frame series (nan where no face was found) plus what the pass learnt about the file."""

    info: ProbeResult
    count: int
    lip_gap: np.ndarray  # inner-lip gap / mouth width
    pose: np.ndarray  # (frames, 3): yaw, pitch, roll in degrees
    rigid: np.ndarray  # (frames, points, 2): rigid landmarks (`JITTER_POINTS`) in analysis pixels
    interocular: np.ndarray  # interocular distance in analysis pixels (the jitter's unit)
    outside_mouth: np.ndarray  # mean brightness of the frame outside the mouth
    background: np.ndarray  # mean brightness of the two top corners
    skin: np.ndarray  # (frames, 3): cheek colour in Lab
    identity_distances: np.ndarray  # one per sampled frame
    seam: np.ndarray  # straight discontinuity of the upper head's motion since the previous frame
    interior_black: np.ndarray  # near-black share inside the open mouth (nan when closed)
    rim_black: np.ndarray  # near-black share along the inner lips (nan when closed)
    chin: np.ndarray  # chin to nose tip per interocular distance
    eye_contrast: np.ndarray  # grey-level spread inside the eyes (dips when they blink)

    @property
    def face_found(self) -> np.ndarray:
        return ~np.isnan(self.lip_gap)


@dataclass(frozen=True)
class IdentityProbe:
    """How to sample identity: the embedder, the avatar's enrolled embedding, samples per second."""

    embedder: IdentityEmbedder
    reference: np.ndarray
    sample_fps: float


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
    video is being encoded). Keeps only the per-frame numbers, never the frames."""

    SERIES = ("gaps", "poses", "rigid", "interocular", "outside", "background", "skin", "distances", "eyes")

    def __init__(
        self, analyser: FaceAnalyser, fps: float, identity: IdentityProbe | None = None, start: int = 0
    ) -> None:
        self.analyser = analyser
        self.fps = fps
        self.identity = identity
        self.start = start  # index of the first frame in the whole video (a chunk of a long render)
        self.step = max(1, round(fps / max(identity.sample_fps, 1e-6))) if identity is not None else 0
        self.gaps: list[float] = []
        self.poses: list[tuple[float, float, float]] = []
        self.rigid: list[np.ndarray] = []
        self.interocular: list[float] = []
        self.outside: list[float] = []
        self.background: list[float] = []
        self.skin: list[np.ndarray] = []
        self.distances: list[float] = []
        self.eyes: list[float] = []
        self.artifacts = ArtifactObserver()
        self.previous: Face | None = None

    @property
    def count(self) -> int:
        return len(self.gaps)

    def add(self, frame: np.ndarray) -> None:
        index = self.start + self.count  # identity is sampled at the same frames however a video is cut
        height, width = frame.shape[:2]
        face = self.analyser.track(frame, self.previous)
        self.previous = face
        corners = np.concatenate([frame[: height // 8, : width // 12], frame[: height // 8, -width // 12 :]], axis=1)
        self.background.append(float(np.mean(cv2.mean(corners)[:3])))
        if face is None:
            self.gaps.append(np.nan)
            self.poses.append(NO_POSE)
            self.rigid.append(np.full((len(JITTER_POINTS), 2), np.nan))
            self.interocular.append(np.nan)
            self.outside.append(np.nan)
            self.skin.append(np.full(3, np.nan))
            self.eyes.append(np.nan)
            self.artifacts.add(frame, None, np.nan)
            return
        landmarks = face.landmarks
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)  # once, for the eyes and the artifact monitor
        features = face_features(landmarks, grey)
        self.eyes.append(features.eye_contrast)
        self.artifacts.add(grey, landmarks, features.lip_gap)
        self.gaps.append(features.lip_gap)
        self.poses.append((features.yaw, head_pitch(landmarks), features.roll))
        # Pixels, not per interocular distance: dividing positions by each frame's distance multiplied
        # that distance's noise by the points' distance from the corner (the jitter is divided instead).
        self.rigid.append(landmarks[list(JITTER_POINTS), :2].astype(float))
        self.interocular.append(face.interocular)
        self.outside.append(mean_outside_mouth(frame, landmarks))
        self.skin.append(skin_lab(frame, landmarks))
        if self.identity is not None and index % self.step == 0:
            embedding = self.identity.embedder.embed(frame, landmarks)
            self.distances.append(identity_distance(embedding, self.identity.reference))

    def export(self) -> dict[str, np.ndarray]:
        """The per-frame numbers as arrays (what a chunk process hands back to its render)."""
        series = {name: np.asarray(getattr(self, name), float) for name in self.SERIES}
        artifacts = {f"artifacts.{name}": getattr(self.artifacts, name) for name in ArtifactObserver.SERIES}
        return series | {name: np.asarray(values, float) for name, values in artifacts.items()}

    def extend(self, exported: dict[str, np.ndarray]) -> None:
        """Append another observer's numbers for the frames that follow this one's (the next chunk)."""
        for name in self.SERIES:
            getattr(self, name).extend(list(exported[name]))
        for name in ArtifactObserver.SERIES:
            getattr(self.artifacts, name).extend(list(exported[f"artifacts.{name}"]))
        self.previous = None

    def result(self, info: ProbeResult, name: str) -> Observations:
        if self.count == 0:
            raise MediaError(f"{name} has no decodable frames; it may be corrupt")
        artifacts = self.artifacts
        observed = Observations(
            info=info,
            count=self.count,
            lip_gap=np.asarray(self.gaps, float),
            pose=np.asarray(self.poses, float),
            rigid=np.asarray(self.rigid, float),
            interocular=np.asarray(self.interocular, float),
            outside_mouth=np.asarray(self.outside, float),
            background=np.asarray(self.background, float),
            skin=np.asarray(self.skin, float),
            identity_distances=np.asarray(self.distances, float),
            seam=np.asarray(artifacts.seam, float),
            interior_black=np.asarray(artifacts.black_share, float),
            rim_black=np.asarray(artifacts.rim_darkness, float),
            chin=np.asarray(artifacts.chin, float),
            eye_contrast=np.asarray(self.eyes, float),
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
) -> Observations:
    path = Path(path)
    if not path.is_file():
        raise QualityError(f"video not found: {path}; check the path")
    info = probe(path, count_frames=False)  # the count is only a progress estimate; frames are counted as read
    if info.audio_codec is None:
        raise QualityError(f"{path.name} has no audio track; lip-sync cannot be measured without the speech")
    width, height = analysis_size(info, analysis_height)
    expected = max(info.frames, 1)
    observer = FrameObserver(analyser, info.fps, identity)
    for frame in read_frames(path, width, height):
        observer.add(frame)
        if on_frame is not None:
            on_frame(observer.count, expected)
    return observer.result(info, path.name)
