"""A recorded face video as driver: the motion channels are read from its landmarks, frame by frame.

The clip is resampled to the output frame rate and analysed at a modest height (landmarks do not
need 1080p). Each channel is measured relative to the clip's own neutral (its median face), so a
driver filmed slightly turned, or with a wider mouth than the avatar, does not carry that over:
- jaw_open: inner-lip gap above the clip's closed baseline (5th percentile), per interocular distance,
  scaled so `jaw_full_open_ratio` is a fully open jaw; lip_closure rises as the gap reaches baseline;
- lip_width / lip_round: mouth width above / below its median;
- teeth: upper lip raised towards the nose; blink: contrast inside the eyes below the open-eye
  reference (the mesh itself keeps the lids open through a blink, the pixels do not);
- eye_wide: lid opening above its median; brow: brows above the eye-corner line, above their median;
- head yaw/pitch/roll: rotation estimates minus their median, clipped to `max_head_deg`; head_x/y:
  the eyes' midpoint minus its median, per interocular distance; head_scale: interocular distance
  relative to its median (leaning towards the camera).
Frames where no face is found are interpolated from their neighbours, up to `max_missing_ratio`.
The result is a `MotionTrack` with source "recorded", which the engine filters for landmark jitter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np

from config import DriverVideoSettings
from driver_synth.track import ROUND_NARROW, WIDTH_TRAVEL, MotionTrack
from media.errors import MediaError
from media.video import ProbeResult, probe, read_frames
from vision.analysis import FaceAnalyser
from vision.face_features import FaceFeatures, face_features

READER_VERSION = 5  # bump when the mapping below changes: cached recorded tracks are keyed by it
CLOSURE_BAND = 0.04  # gap (per interocular) above the closed baseline at which the lips count as parted
TEETH_RAISE_IO = 0.08  # upper-lip raise (per interocular) read as full teeth
WIDTH_STRETCH, WIDTH_NARROW = WIDTH_TRAVEL, ROUND_NARROW  # the driver's width change, as the avatar makes it
BROW_RAISE_IO = 0.06  # brow lift above its median (per interocular) read as brow = 1
BROW_DEAD_IO = 0.015  # ... beyond this dead zone
EYE_WIDE_RATIO = 0.3  # lid opening this much above its median read as eye_wide = 1
EYE_WIDE_DEAD = 0.15  # ... beyond this dead zone
MAX_SHIFT_IO = 0.4  # head translation read from the clip is clipped to this (interocular distances)
MAX_SCALE = 0.3  # and the size change to ±30 %
THUMBNAIL = (64, 36)  # frames are compared for cuts at this size


def inspect_driver_video(path: Path, settings: DriverVideoSettings) -> ProbeResult:
    """Cheap checks before any analysis: readable, has frames, not longer than allowed."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"driver video not found: {path}; check the path")
    info = probe(path)
    if info.frames < 2 or info.duration <= 0:
        raise MediaError(f"driver video {path} has no frames; use a clip of a speaking face")
    if info.duration > settings.max_seconds:
        raise MediaError(
            f"driver video {path} is {info.duration:.0f} s long, over the {settings.max_seconds:.0f} s limit; "
            "split it or raise driver_video.max_seconds"
        )
    return info


def appearance_change(before: np.ndarray, after: np.ndarray) -> float:
    """Mean absolute grey-level change between two frames at thumbnail size: a cut changes the
    whole picture at once; a moving head changes a part of it a little every frame."""
    a, b = (
        cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), THUMBNAIL, interpolation=cv2.INTER_AREA)
        for f in (before, after)
    )
    return float(np.mean(np.abs(b.astype(np.float32) - a)))


def find_jump(changes: np.ndarray, settings: DriverVideoSettings) -> int | None:
    """Index of the first frame-to-frame change far above the clip's own (a cut, a splice, a run
    of dropped frames), or None. The clip is its own reference: fast motion changes every frame a
    lot, a cut changes one frame many times more than the others; one dropped frame doubles a step."""
    if len(changes) < 5:
        return None
    usual = float(np.percentile(changes, 90))
    over = np.flatnonzero((changes > settings.max_jump_ratio * usual) & (changes > settings.min_jump_grey))
    return int(over[0]) if over.size else None


def resample_features(
    features: list[FaceFeatures | None], source_fps: float, fps: int, count: int
) -> list[FaceFeatures | None]:
    """`count` frames at `fps` interpolated by timestamp between the clip's own frames: from 29.97
    or 30 fps to 25 no frame is dropped or repeated (a dropped frame doubles one step of the motion
    and the rendered head jerks every sixth frame). Where a neighbour has no face the nearer is used."""
    out: list[FaceFeatures | None] = []
    last = len(features) - 1
    for index in range(count):
        position = min(index * source_fps / fps, last)
        first = int(np.floor(position))
        second, weight = min(first + 1, last), position - first
        a, b = features[first], features[second]
        if a is None or b is None or weight < 1e-6:
            out.append(a if weight < 0.5 else b)
            continue
        out.append(
            FaceFeatures(**{f.name: (1 - weight) * getattr(a, f.name) + weight * getattr(b, f.name) for f in fields(a)})
        )
    return out


def read_driver_features(
    path: Path,
    analyser: FaceAnalyser,
    fps: int,
    settings: DriverVideoSettings,
    on_frame: Callable[[int, int], None] | None = None,
) -> list[FaceFeatures | None]:
    """Per output frame: the largest face's features, or None where no face was found.

    Every frame of the clip is read at its own rate; the output frames are interpolated from them
    by timestamp. A clip that jumps (a cut) is refused before any rendering, naming the time."""
    info = inspect_driver_video(path, settings)
    height = min(settings.analysis_height, info.height)
    height -= height % 2
    width = int(round(info.width * height / info.height / 2) * 2)
    source_fps = info.fps if info.fps > 0 else float(fps)
    expected = max(1, round(info.duration * source_fps))
    features: list[FaceFeatures | None] = []
    changes: list[float] = []
    previous: np.ndarray | None = None
    for frame in read_frames(path, width, height):
        if previous is not None:
            changes.append(appearance_change(previous, frame))
        previous = frame
        face = analyser.largest_face(frame)
        features.append(face_features(face.landmarks, frame) if face is not None else None)
        if on_frame is not None:
            on_frame(len(features), expected)
    jump = find_jump(np.asarray(changes), settings)
    if jump is not None:
        usual = float(np.percentile(changes, 90))
        raise MediaError(
            f"driver video {path} jumps at {(jump + 1) / source_fps:.2f} s (frame {jump + 1}): the picture changes "
            f"{changes[jump] / max(usual, 1e-6):.0f}x more than between its other frames (a cut or dropped frames); "
            "use one continuous take (trim it there, e.g. ffmpeg -ss/-to)"
        )
    count = max(1, round(len(features) * fps / source_fps))
    return resample_features(features, source_fps, fps, count)


def _fill_missing(values: np.ndarray) -> np.ndarray:
    known = ~np.isnan(values)
    if known.all():
        return values
    index = np.arange(len(values))
    return np.interp(index, index[known], values[known])


def track_from_features(
    features: list[FaceFeatures | None], fps: int, settings: DriverVideoSettings, source: str = "driver video"
) -> MotionTrack:
    """Map per-frame face measurements to the motion channels (see the module docstring)."""
    if not features:
        raise MediaError(f"{source} has no frames; use a clip of a speaking face")
    missing = sum(f is None for f in features) / len(features)
    if missing > settings.max_missing_ratio:
        raise MediaError(
            f"no face in {missing:.0%} of the frames of {source} (limit {settings.max_missing_ratio:.0%}); "
            "use a clip where one frontal face is visible throughout"
        )

    def series(name: str) -> np.ndarray:
        return _fill_missing(np.array([getattr(f, name) if f is not None else np.nan for f in features], float))

    gap = series("lip_gap_io")
    above_closed = gap - np.percentile(gap, 5)
    jaw = np.clip(above_closed / settings.jaw_full_open_ratio, 0.0, 1.0)
    closure = np.clip(1.0 - above_closed / CLOSURE_BAND, 0.0, 1.0)
    width = series("mouth_width_io")
    relative_width = width / np.median(width)
    lip_width = np.clip((relative_width - 1.0) / WIDTH_STRETCH, 0.0, 1.0)
    lip_round = np.clip((1.0 - relative_width) / WIDTH_NARROW, 0.0, 1.0)
    upper = series("upper_lip_io")
    teeth = np.clip((np.median(upper) - upper) / TEETH_RAISE_IO, 0.0, 1.0)
    eyes = series("eye_contrast")
    open_eye = max(float(np.percentile(eyes, 75)), 1e-6)
    blink = np.clip((1.0 - eyes / open_eye - 0.1) / 0.3, 0.0, 1.0)
    limit = settings.max_head_deg

    def head(name: str) -> np.ndarray:
        values = series(name)
        return np.clip(values - np.median(values), -limit, limit)

    brow_lift = series("brow_lift")
    # Dead zones: turning the head changes these proportions by a few percent; only a real raise counts.
    brow = np.clip((brow_lift - np.median(brow_lift) - BROW_DEAD_IO) / BROW_RAISE_IO, 0.0, 1.0)
    eye_open = series("eye_open")
    relative_open = eye_open / max(float(np.median(eye_open)), 1e-6) - 1.0
    eye_wide = np.clip((relative_open - EYE_WIDE_DEAD) / EYE_WIDE_RATIO, 0.0, 1.0)
    size = series("interocular_px")
    reference = max(float(np.median(size)), 1e-6)

    rotation = np.column_stack([head("yaw"), head("pitch"), head("roll"), np.ones(len(features))])

    def shift(name: str) -> np.ndarray:
        """The head's translation: the motion of where it pivots, less what its turning explains
        (a pivot estimated from the face moves with the rotation too; a least-squares fit on the
        rotation angles removes that part, whatever the face's proportions)."""
        values = (series(name) - np.median(series(name))) / reference
        coefficients, *_ = np.linalg.lstsq(rotation, values, rcond=None)
        return np.clip(values - rotation @ coefficients, -MAX_SHIFT_IO, MAX_SHIFT_IO)

    channels = {
        "jaw_open": jaw,
        "lip_width": lip_width,
        "lip_round": lip_round,
        "lip_closure": closure,
        "teeth": teeth,
        "blink": blink,
        "eye_wide": eye_wide * (1.0 - blink),
        "brow": brow,
        "head_yaw": head("yaw"),
        "head_pitch": head("pitch"),
        "head_roll": head("roll"),
        "head_x": shift("centre_x"),
        "head_y": shift("centre_y"),
        "head_scale": np.clip(size / reference - 1.0, -MAX_SCALE, MAX_SCALE),
    }
    return MotionTrack.from_channels(fps, channels, source="recorded")


def track_from_video(
    path: Path,
    analyser: FaceAnalyser,
    fps: int,
    settings: DriverVideoSettings,
    on_frame: Callable[[int, int], None] | None = None,
) -> MotionTrack:
    features = read_driver_features(path, analyser, fps, settings, on_frame)
    return track_from_features(features, fps, settings, source=str(path))
