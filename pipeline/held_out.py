"""Objective quality of a personal avatar: re-render held-out recording frames and compare mouths.

The last `share` of the recording is held out; a bank built from the rest renders those frames on
the avatar's base with the motion read from them, and so does the painted mouth (the reenactor
alone) on the same base and motion. Both are compared with the real frames in the canonical
mouth frame (`fusion.mouth_bank`: stable points, so a head that moved in the recording is still
compared mouth to mouth):
- SSIM (grey, Gaussian window σ 1.5) and PSNR (colour) over the mouth region: the real lips' box
  widened by a quarter of the mouth width on every side;
- lip-landmark distance: the face mesh re-detected on the rendered frame (what a viewer's eye, or a
  lip reader, sees; not the points the renderer meant) against the real frame's, mean over the 40
  lip points, in interocular distances.
The target motion is the held-out footage's own mouth channels (the recorded-driver mapping), so
both renderers aim at the same shapes and the comparison isolates how each draws a mouth.

Issue 26: the head pose is the held-out footage's too (yaw and pitch measured on every frame,
relative to the base face's), so a recording with a moving head is re-rendered at the poses it
was filmed at, and the scores are also given per pose bucket (`POSE_BUCKETS`, by |yaw|) and per
viseme class (of the held-out frame's real shape): a recording the user brings shows where the
avatar is weak, not only its mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from driver_synth.track import MotionTrack
from fusion.mouth_bank import (
    FEATURES,
    IO_PX,
    LIP_POINTS,
    VISEME_CLASSES,
    MouthBank,
    apply,
    articulation_scale,
    crop_size,
    to_crop,
)
from fusion.processors.base import FrameContext
from fusion.processors.mouth_bank import MouthBankOptions, MouthBankProcessor
from fusion.processors.reenactor import Reenactor
from fusion.unit_selection import run_lengths, selection_error
from quality.errors import QualityError
from vision.analysis import Face, FaceAnalyser

HELD_OUT = 0.2
MIN_HELD_OUT = 10  # frames
# |yaw| relative to the base face, degrees: [low, high) per bucket (the frontal, 10° and 20°).
POSE_BUCKETS = {"frontal": (0.0, 5.0), "10deg": (5.0, 15.0), "20deg": (15.0, 90.0)}


@dataclass(frozen=True)
class MouthScores:
    ssim: float
    psnr: float
    lip_distance: float  # interocular distances

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class HeldOutEvaluation:
    frames: int  # held-out frames compared
    units: int  # units in the bank built from the rest
    bank: MouthScores
    painted: MouthScores
    selection_error: float  # mean shape distance between chosen unit and target
    selection_error_p95: float
    mean_run: float  # mean run of consecutive recorded frames along the chosen path
    held_frames: np.ndarray | None = None  # recording frame of every compared held-out frame
    chosen_frames: np.ndarray | None = None  # recording frame of the unit shown there (from the other 80 %)
    by_pose: dict[str, dict[str, object]] | None = None  # bucket → frames, mouth_bank and painted_mouth scores
    by_viseme: dict[str, dict[str, object]] | None = None  # viseme class → the same

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "units": self.units,
            "mouth_bank": self.bank.as_dict(),
            "painted_mouth": self.painted.as_dict(),
            "selection_error": round(self.selection_error, 4),
            "selection_error_p95": round(self.selection_error_p95, 4),
            "mean_run_frames": round(self.mean_run, 2),
            "by_pose": self.by_pose or {},
            "by_viseme": self.by_viseme or {},
        }


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two grey images (Wang et al. 2004, Gaussian window σ = 1.5)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(value.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse <= 1e-10 else float(10 * np.log10(255.0**2 / mse))


def mouth_box(lips: np.ndarray) -> tuple[int, int, int, int]:
    """The real lips' box in crop pixels, widened by a quarter of the mouth width."""
    width, height = crop_size()
    pad = 0.25 * float(np.ptp(lips[:, 0]))
    x0, y0 = np.floor(lips.min(0) - pad).astype(int)
    x1, y1 = np.ceil(lips.max(0) + pad).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def held_out_track(held: MouthBank, scale: np.ndarray, first: int, count: int, fps: int,
                   base_pose: np.ndarray | None = None) -> MotionTrack:  # fmt: skip
    """Mouth channels of the held-out frames (missing faces interpolated), all else at rest. The
    recorded values are divided by the bank's `articulation_scale`, so the track is in track units
    (1.0 = the person's fullest articulation), as a synthetic track is. With `base_pose` (the base
    face's yaw and pitch) and a bank that stores poses, the head turns as it did in the footage."""
    index = np.arange(first, first + count)
    values = np.clip(held.features / scale, 0.0, 1.0)
    channels = {name: np.interp(index, held.frames, values[:, k]) for k, name in enumerate(FEATURES)}
    if base_pose is not None and held.pose is not None:
        for k, name in enumerate(("head_yaw", "head_pitch")):
            channels[name] = np.interp(index, held.frames, held.pose[:, k] - base_pose[k])
    return MotionTrack.from_channels(fps, channels)


def grouped_scores(values: np.ndarray, groups: dict[str, np.ndarray]) -> dict[str, dict[str, object]]:
    """Mean scores of the frames in each group (groups with no frame are left out)."""
    out: dict[str, dict[str, object]] = {}
    for name, members in groups.items():
        if members.any():
            bank, painted = values[0][members], values[1][members]
            out[name] = {
                "frames": int(members.sum()),
                "mouth_bank": MouthScores(*(float(np.nanmean(bank[:, k])) for k in range(3))).as_dict(),
                "painted_mouth": MouthScores(*(float(np.nanmean(painted[:, k])) for k in range(3))).as_dict(),
            }
    return out


class _Scorer:
    def __init__(self, template: np.ndarray, analyser: FaceAnalyser) -> None:
        self.template, self.analyser = template, analyser
        self.previous: Face | None = None
        self.values: list[tuple[float, float, float]] = []

    def add(self, frame: np.ndarray, landmarks: np.ndarray, real: np.ndarray, real_lips: np.ndarray) -> None:
        crop = cv2.warpAffine(frame, to_crop(landmarks, self.template), crop_size(), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        x0, y0, x1, y1 = mouth_box(real_lips)
        a, b = crop[y0:y1, x0:x1], real[y0:y1, x0:x1]
        grey = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.cvtColor(b, cv2.COLOR_BGR2GRAY)
        face = self.analyser.track(frame, self.previous)
        self.previous = face
        if face is None:
            distance = float("nan")
        else:
            lips = apply(to_crop(face.landmarks, self.template), face.landmarks[list(LIP_POINTS)])
            distance = float(np.linalg.norm(lips - real_lips, axis=1).mean() / IO_PX)
        self.values.append((ssim(*grey), psnr(a, b), distance))

    def scores(self) -> MouthScores:
        values = np.array(self.values)
        return MouthScores(*(float(np.nanmean(values[:, k])) for k in range(3)))


def evaluate_held_out(
    bank: MouthBank,
    work_image: np.ndarray,
    work_landmarks: np.ndarray,
    analyser: FaceAnalyser,
    options: MouthBankOptions | None = None,
    share: float = HELD_OUT,
) -> HeldOutEvaluation:
    """Hold out the last `share` of the recording's frames; score the bank and the painted mouth."""
    total = int(bank.frames.max()) + 1
    split = round(total * (1.0 - share))
    train, held = bank.subset(bank.frames < split), bank.subset(bank.frames >= split)
    if len(held) < MIN_HELD_OUT or len(train) < MIN_HELD_OUT:
        raise QualityError(
            f"the recording has {len(bank)} usable frames; at least {2 * MIN_HELD_OUT / share:.0f} are needed to "
            "hold out a fifth and evaluate (record 60-180 s)"
        )
    scale = articulation_scale(train.features)
    reenactor = Reenactor(work_landmarks)
    reenactor.prepare(work_image)
    processor = MouthBankProcessor(options, train)
    processor.prepare(work_image)
    processor.set_base_pose(work_landmarks)
    track = held_out_track(held, scale, split, total - split, bank.fps, processor.base_pose)
    processor.plan(track)
    path = processor.path
    banked, painted = _Scorer(bank.template, analyser), _Scorer(bank.template, analyser)
    previous = None
    for unit in range(len(held)):
        index = int(held.frames[unit]) - split
        motion = track.frame(index)
        frame = reenactor.process_frame(work_image, FrameContext(index=index, motion=motion)).copy()
        landmarks = reenactor.frame_landmarks(motion)
        real, real_lips = held.crop(unit), held.lips[unit]
        painted.add(frame, landmarks, real, real_lips)
        chosen = int(path[index])
        processor.paste_after(frame, chosen, previous, landmarks)  # as a render pastes it, joins included
        previous = chosen
        banked.add(frame, landmarks, real, real_lips)
    targets = np.stack([track.channels[name] for name in FEATURES], axis=1) * scale
    errors = selection_error(train.features, path, targets)
    values = (np.array(banked.values), np.array(painted.values))
    yaw = np.abs(track.channels["head_yaw"][held.frames - split]) if "head_yaw" in track.channels else None
    if yaw is None:
        yaw = np.zeros(len(held))
    by_pose = grouped_scores(values, {name: (yaw >= low) & (yaw < high) for name, (low, high) in POSE_BUCKETS.items()})
    by_viseme = grouped_scores(values, {name: held.labels == k for k, name in enumerate(VISEME_CLASSES)})
    return HeldOutEvaluation(
        frames=len(held),
        units=len(train),
        bank=banked.scores(),
        painted=painted.scores(),
        selection_error=float(errors.mean()),
        selection_error_p95=float(np.percentile(errors, 95)),
        mean_run=float(run_lengths(train.frames, path).mean()),
        held_frames=held.frames.copy(),
        chosen_frames=train.frames[path[held.frames - split]],
        by_pose=by_pose,
        by_viseme=by_viseme,
    )
