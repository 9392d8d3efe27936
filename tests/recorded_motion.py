"""Recorded-like head motion made from real renders of the sample avatar (no footage of real people
ships here): the recipes the seam monitor is calibrated on, kept in one place so each figure in
docs/benchmarks.md can be made again.

The phone recipe moves the head like the clip of issue 26: up to ~30 px between two output frames
at 1080p, roll ±12°, pitch ±15°, a lean-in that scales the head up by 25 %, filmed at 30 fps and
resampled to 25 (frames dropped by timestamp, as ffmpeg's fps filter does) or motion-blurred."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np

from driver_synth.track import MotionTrack
from media.video import ffmpeg_binary
from quality.observe import FrameObserver
from vision import topology as topo
from vision.analysis import FaceAnalyser

ANALYSIS = (640, 360)  # the gate's analysis size for a 16:9 video
TEAR_PX_1080 = 12  # the old torn render's block shift at 1080p


def phone_track(fps: float, seconds: float = 3.0, lean_in: float = 0.25, sway: float = 0.15) -> MotionTrack:
    """A talking head filmed handheld: fast side-to-side sway, roll, nods and a lean towards the
    camera (head_scale rises from 0 to `lean_in` and back)."""
    t = np.arange(round(fps * seconds)) / fps
    return MotionTrack.from_channels(
        round(fps),
        {
            "head_x": sway * np.sin(2 * np.pi * 1.2 * t),
            "head_y": 0.08 * np.sin(2 * np.pi * 0.9 * t + 1.0),
            "head_roll": 12 * np.sin(2 * np.pi * 0.7 * t),
            "head_pitch": 15 * np.sin(2 * np.pi * 0.9 * t + 0.5),
            "head_scale": lean_in * (1 - np.cos(2 * np.pi * t / seconds)) / 2,
            "jaw_open": 0.45 * (1 + np.sin(2 * np.pi * 3.1 * t)) / 2,
            "lip_closure": (np.sin(2 * np.pi * 0.9 * t) > 0.93).astype(float),
        },
    )


def analysis_frames(engine, track: MotionTrack) -> np.ndarray:
    """The engine's 1080p frames of `track`, scaled to the gate's analysis size."""
    return np.stack([cv2.resize(f, ANALYSIS, interpolation=cv2.INTER_AREA) for f in engine.frames(track)])


def resample(frames: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Nearest frame by timestamp (drops one frame in six from 30 to 25 fps: a double step)."""
    count = int(len(frames) * target_fps / source_fps)
    return frames[np.minimum(np.round(np.arange(count) * source_fps / target_fps).astype(int), len(frames) - 1)]


def motion_blur(frames: np.ndarray) -> np.ndarray:
    """A shutter open over half the frame interval: each frame averaged with the one before."""
    blurred = (frames[1:].astype(np.float32) * 0.6 + frames[:-1].astype(np.float32) * 0.4).round()
    return np.concatenate([frames[:1], blurred.astype(np.uint8)])


def handheld(frames: np.ndarray, fps: float, step_1080: float = 28.0) -> np.ndarray:
    """The whole picture moved like a handheld phone: translation peaking at `step_1080` px per
    frame at 1080p, roll ±6° and a ±15 % zoom."""
    height, width = frames.shape[1:3]
    speed = step_1080 * height / 1080 * fps  # px per second at this size
    out = []
    for index, frame in enumerate(frames):
        t = index / fps
        matrix = cv2.getRotationMatrix2D(
            (width / 2, height / 2), 6 * np.sin(2 * np.pi * t), 1 + 0.15 * np.sin(np.pi * 1.6 * t)
        )
        matrix[0, 2] += speed / (2 * np.pi * 1.5) * np.sin(2 * np.pi * 1.5 * t)
        out.append(cv2.warpAffine(frame, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def tear(frames: np.ndarray, indices, analyser: FaceAnalyser, sharp: np.ndarray | None = None) -> np.ndarray:
    """A copy with a band of the head (the hair above the forehead down through the brows) shifted
    sideways by the old torn render's 12 px at 1080p in `indices`, the rest of the head untouched.
    Landmarks come from `sharp` (the same frames before blurring) when given."""
    out = frames.copy()
    shift = max(1, round(TEAR_PX_1080 * frames.shape[1] / 1080))
    for index in indices:
        landmarks = analyser.largest_face((sharp if sharp is not None else frames)[index]).landmarks
        io = float(np.linalg.norm(landmarks[topo.LEFT_EYE_OUTER, :2] - landmarks[topo.RIGHT_EYE_OUTER, :2]))
        top = landmarks[topo.FOREHEAD, :2]
        brows = float(landmarks[list(topo.RIGHT_BROW + topo.LEFT_BROW), 1].mean())
        x0, x1 = max(int(top[0] - io), 0), int(top[0] + io)
        y0, y1 = max(int(top[1] - 0.45 * io), 0), int(brows + 0.12 * io)
        out[index, y0:y1, x0:x1] = np.roll(out[index, y0:y1, x0:x1], shift, axis=1)
    return out


def seam_scores(frames: np.ndarray, analyser: FaceAnalyser, fps: float) -> np.ndarray:
    """The gate's per-frame seam score of these analysis-size frames."""
    observer = FrameObserver(analyser, fps)
    for frame in frames:
        observer.add(frame)
    return np.asarray(observer.observers["artifacts"].values["seam"], float)


def head_steps_1080(frames: np.ndarray, analyser: FaceAnalyser) -> np.ndarray:
    """Largest landmark displacement between consecutive frames (forehead, nose, eye corners), in
    1080p pixels: how fast the head moves."""
    points, previous = [], None
    for frame in frames:
        face = analyser.track(frame, previous)
        previous = face
        points.append(face.landmarks[[topo.FOREHEAD, topo.NOSE_TIP, 33, 263], :2] if face else np.full((4, 2), np.nan))
    steps = np.linalg.norm(np.diff(np.array(points), axis=0), axis=2).max(axis=1)
    return steps * 1080 / frames.shape[1]


def recorded_driver_clip(preview: Path, target: Path, fps: str = "30000/1001") -> Path:
    """A held-out 'recorded' driver: a rendered talking head (`preview`) filmed by a moving phone —
    sinusoidal rotation (±3°), a slow 5 % zoom-in (lean-in) and a sideways pan (±1.5 % of the width) — encoded at 29.97
    fps, as a phone would. The exact recipe, so the clip can be made again."""
    filters = (
        f"fps={fps},"
        "rotate='0.05*sin(2*PI*t/1.3)',"
        "scale=w='1280*(1.1+0.05*(1-cos(2*PI*t/4))/2)':h=-2:eval=frame,"
        "crop=1280:720:'(iw-ow)/2+0.015*iw*sin(2*PI*t/0.9)':'(ih-oh)/2',setsar=1"
    )
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-y", "-i", str(preview), "-vf", filters, "-r", fps,
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", str(target)],
        check=True,
    )  # fmt: skip
    return target
