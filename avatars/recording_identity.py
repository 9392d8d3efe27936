"""A speaking recording shows one person, the one of its reference frame, from its first frame to its last.

Enrollment checks the reference frame (the middle of the longest quiet stretch) as a photo, but the
mouth bank is cut from every other frame: a recording whose face becomes another person after the
quiet stretch, or that gains a second face, would put someone else's mouths into a consented
avatar. So after the photo checks, a second pass over the recording checks:

- every frame that went into the mouth bank (every frame with a tracked face, so the whole clip at
  the recording's frame rate): the dlib identity descriptor of its face, on the landmarks the bank
  unit was cut with, against the reference frame's; farther than `max_identity_distance` is another
  person. A frame outside the bank (no tracked face) where the detector still finds one face is
  embedded too.
- every frame: the face detector on the whole frame; and every `face_search_seconds` (0.5 s) the
  frame in overlapping tiles as well (`FaceDetector.detect_tiles`: the whole-frame pass misses faces
  under ~260 px wide in 1080p, the tiles find them from ~70 px). A second face whose mesh fits is
  refused; the tiles' time stamp is the first sampled frame that shows it (within 0.5 s).

The first offending frame refuses the recording with its time stamp (mm:ss.s), so a hostile
recording costs only the frames up to it. Why every frame and not a sample every 0.5 s: a sample
misses a single spliced frame, and any bank frame can be chosen by unit selection. The price is one
descriptor a frame (~85 ms on one core: a 60 s recording costs 2-3 minutes, docs/decisions.md); the
detector adds 2-4 ms a frame, the tiles ~60 ms twice a second (1080p).
Why a second pass, not the analysis pass: the identity to compare with exists only once the
reference frame passed the photo checks, and the cheap checks then refuse a bad recording before
this expensive part starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatars.errors import EnrollmentError
from config.settings import SpeakingSettings
from media.video import read_frames
from vision.analysis import FaceAnalyser
from vision.face_detector import Detection
from vision.identity import IdentityEmbedder, identity_distance

MIN_MESH_SCORE = 0.5  # a detection counts as a face when the mesh fits it this well (the tracker's own limit)


@dataclass(frozen=True)
class IdentityCheck:
    """What the whole-recording pass measured (stored in the version's checks.json)."""

    frames: int  # frames read
    embedded: int  # frames whose identity was compared
    max_distance: float
    max_distance_frame: int

    def as_dict(self, fps: int) -> dict[str, float | int | str]:
        return {
            "identity_frames_checked": self.embedded,
            "identity_max_distance": round(self.max_distance, 3),
            "identity_max_distance_at": clock(self.max_distance_frame / fps),
        }


def clock(seconds: float) -> str:
    """A time stamp as mm:ss.s (tenths rounded first, so 59.96 s reads 01:00.0, not 00:60.0)."""
    minutes, tenths = divmod(round(max(seconds, 0.0) * 10), 600)
    return f"{minutes:02d}:{tenths / 10:04.1f}"


def check_whole_recording(
    path: Path,
    name: str,
    fps: int,
    tracked: dict[int, np.ndarray],
    reference: np.ndarray,
    reference_frame: int,
    analyser: FaceAnalyser,
    embedder: IdentityEmbedder,
    limits: SpeakingSettings,
) -> IdentityCheck:
    """Every frame of `path` (decoded at `fps`, as the analysis pass did): one face only, and the
    person of `reference` (an identity embedding). `tracked` maps a bank frame's index to the
    landmarks its unit was cut with. EnrollmentError names the first offending frame."""
    at_reference = clock(reference_frame / fps)
    frames, embedded, worst, worst_frame, searched = 0, 0, 0.0, reference_frame, -1
    for index, frame in enumerate(read_frames(path, fps=fps)):
        frames += 1
        detections = analyser.detector.detect(frame)
        landmarks = tracked.get(index)
        if landmarks is None and len(detections) == 1:
            landmarks, score = analyser.landmarker.landmarks(frame, detections[0])
            landmarks = landmarks if score >= MIN_MESH_SCORE else None
        others = 0
        if len(detections) > 1:
            others = max(sum(face.mesh_score >= MIN_MESH_SCORE for face in analyser.faces(frame)) - 1, 0)
        sample = int(index / (fps * limits.face_search_seconds))
        if not others and sample != searched:
            searched = sample
            others = _faces_beside(frame, _main_box(landmarks, detections), analyser)
        if others:
            raise EnrollmentError(
                f"{name}: a second face at {clock(index / fps)} ({others + 1} faces in the frame); "
                "record with only the enrolled person in view (no one behind, no photos or screens)"
            )
        if landmarks is None:
            continue
        distance = identity_distance(embedder.embed(frame, landmarks), reference)
        embedded += 1
        if distance > worst:
            worst, worst_frame = distance, index
        if distance > limits.max_identity_distance:
            raise EnrollmentError(
                f"{name}: the face at {clock(index / fps)} is another person than the reference frame at "
                f"{at_reference} (identity distance {distance:.2f}, limit {limits.max_identity_distance:.2f}); "
                "record one take of the consenting person only"
            )
    return IdentityCheck(frames=frames, embedded=embedded, max_distance=worst, max_distance_frame=worst_frame)


def _main_box(landmarks: np.ndarray | None, detections: list[Detection]) -> tuple[float, ...] | None:
    """The enrolled face's box grown by a quarter (a tile may find its chin or an eye alone)."""
    if landmarks is not None:
        (x0, y0), (x1, y1) = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    elif len(detections) == 1:
        x0, y0, x1, y1 = detections[0].box
    else:
        return None
    grow_x, grow_y = (x1 - x0) / 8, (y1 - y0) / 8
    return (x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + grow_y)


def _faces_beside(frame: np.ndarray, main: tuple[float, ...] | None, analyser: FaceAnalyser) -> int:
    """How many faces the tiled search finds outside the enrolled face's box (all but one when there is
    no enrolled face in the frame), each confirmed by its mesh."""
    found = 0
    for detection in analyser.detector.detect_tiles(frame):
        x0, y0, x1, y1 = detection.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if main is not None and main[0] <= cx <= main[2] and main[1] <= cy <= main[3]:
            continue
        found += analyser.landmarker.landmarks(frame, detection)[1] >= MIN_MESH_SCORE
    return found if main is not None else max(found - 1, 0)
