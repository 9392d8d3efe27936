"""Quality monitors: measure any talking-head MP4 from its own pixels and sound, and judge it.

One streamed pass over the frames (decoded by ffmpeg at `analysis_height`), the face tracked from
frame to frame (a full detection only on the first frame or when the mesh loses confidence):
- lip-sync: inner-lip gap vs the audio RMS envelope, correlation at the best lag within ±200 ms;
  closure rate inside bilabial phones when their timings are known;
- identity: dlib descriptor distance to a reference embedding, sampled at `identity_sample_fps`;
- pose: yaw/pitch/roll per frame; frames beyond the gate are interpolated or dropped, and counted;
- temporal stability: flicker of what should not change (the frame outside the mouth, the
  background corners) and jitter of rigid landmarks (eye corners, nose bridge);
- colour: skin-tone drift (ΔE, CIE76 in Lab) first vs last second, and against a reference colour.
Each figure is compared with `QualitySettings`; `QualityReport.failures` lists every broken one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from config import QualitySettings
from fusion import topology as topo
from fusion.analysis import Face, FaceAnalyser
from fusion.errors import FusionError, MediaError
from fusion.face_features import face_features
from fusion.frame_io import probe, read_audio_mono, read_frames
from fusion.identity import IdentityEmbedder, identity_distance
from fusion.measure import correlation_at_best_lag, rms_envelope

RIGID_POINTS = (topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER, topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER, 168)
CHEEKS = (50, 280)


class QualityError(FusionError):
    """The video cannot be evaluated (no face, no audio, unreadable)."""


@dataclass(frozen=True)
class QualityReport:
    passed: bool
    failures: tuple[str, ...]
    frames: int
    fps: float
    lipsync: dict[str, float]
    identity: dict[str, float | int | None]
    pose: dict[str, float | int]
    stability: dict[str, float]
    color: dict[str, float | None]
    seconds: float = 0.0
    series: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "frames": self.frames,
            "fps": self.fps,
            "lipsync": self.lipsync,
            "identity": self.identity,
            "pose": self.pose,
            "stability": self.stability,
            "color": self.color,
            "evaluation_seconds": round(self.seconds, 2),
        }


def _box_mean(image: np.ndarray, centre: np.ndarray, half_w: float, half_h: float) -> np.ndarray | None:
    x0, y0 = int(max(centre[0] - half_w, 0)), int(max(centre[1] - half_h, 0))
    x1, y1 = int(min(centre[0] + half_w, image.shape[1])), int(min(centre[1] + half_h, image.shape[0]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return image[y0:y1, x0:x1].reshape(-1, image.shape[2] if image.ndim == 3 else 1).mean(axis=0)


def skin_lab(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean Lab colour (L 0-100, a, b) of two cheek patches."""
    interocular = float(np.linalg.norm(landmarks[topo.LEFT_EYE_OUTER, :2] - landmarks[topo.RIGHT_EYE_OUTER, :2]))
    means = [_box_mean(image_bgr, landmarks[i, :2], 0.08 * interocular, 0.08 * interocular) for i in CHEEKS]
    means = [m for m in means if m is not None]
    if not means:
        return np.full(3, np.nan)
    pixel = np.mean(means, axis=0).astype(np.float32).reshape(1, 1, 3) / 255.0
    return cv2.cvtColor(pixel, cv2.COLOR_BGR2LAB).reshape(3).astype(float)


def _mean_outside_mouth(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean brightness of the whole frame except a padded box around the mouth: everything that a
    talking head should keep still. A large area, so head motion and landmark jitter barely move it,
    while a flickering exposure or colour correction moves all of it."""
    grey = frame.mean(axis=2) if frame.ndim == 3 else frame
    lips = landmarks[list(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER), :2]
    pad = 0.5 * float(np.ptp(lips[:, 0]))
    x0, y0 = np.maximum(np.floor(lips.min(0) - pad).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(lips.max(0) + pad).astype(int), [grey.shape[1], grey.shape[0]])
    total, inner = float(grey.sum()), float(grey[y0:y1, x0:x1].sum())
    count = grey.size - max(0, (x1 - x0) * (y1 - y0))
    return (total - inner) / max(count, 1)


def _gated(values: np.ndarray, gated: np.ndarray, action: str) -> np.ndarray:
    """Values with gated frames interpolated from neighbours (or set to nan: dropped)."""
    out = values.astype(float).copy()
    if not gated.any():
        return out
    out[gated] = np.nan
    if action == "drop":
        return out
    good = ~np.isnan(out)
    if good.sum() < 2:
        return out
    index = np.arange(len(out))
    return np.interp(index, index[good], out[good])


def _typical_step(series: np.ndarray) -> float:
    """Median absolute frame-to-frame change: flicker is a property of most frames, so one blink or
    one mis-tracked frame does not count as flicker."""
    steps = np.abs(np.diff(series[~np.isnan(series)]))
    return float(np.median(steps)) if steps.size else 0.0


def evaluate_video(
    path: Path,
    analyser: FaceAnalyser,
    limits: QualitySettings,
    embedder: IdentityEmbedder | None = None,
    reference_embedding: np.ndarray | None = None,
    reference_lab: np.ndarray | None = None,
    bilabial_spans: list[tuple[float, float]] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    measure_lipsync: bool = True,
) -> QualityReport:
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise QualityError(f"video not found: {path}; check the path")
    info = probe(path)
    if info.audio_codec is None:
        raise QualityError(f"{path.name} has no audio track; lip-sync cannot be measured without the speech")
    height = min(limits.analysis_height, info.height)
    height -= height % 2
    width = int(round(info.width * height / info.height / 2) * 2)
    expected = max(info.frames, 1)
    step = max(1, round(info.fps / max(limits.identity_sample_fps, 1e-6)))
    gaps, poses, rigid, forehead, background, skin, distances = [], [], [], [], [], [], []
    previous: Face | None = None
    frame_index = -1
    for frame_index, frame in enumerate(read_frames(path, width, height)):
        face = analyser.track(frame, previous)
        previous = face
        corners = np.concatenate([frame[: height // 8, : width // 12], frame[: height // 8, -width // 12 :]], axis=1)
        background.append(float(corners.mean()))
        if face is None:
            gaps.append(np.nan)
            poses.append((np.nan, np.nan, np.nan))
            rigid.append(np.full((len(RIGID_POINTS), 2), np.nan))
            forehead.append(np.nan)
            skin.append(np.full(3, np.nan))
        else:
            lm = face.landmarks
            features = face_features(lm)
            vertical = lm[topo.CHIN] - lm[topo.FOREHEAD]
            pitch = float(np.degrees(np.arctan2(-vertical[2], vertical[1])))
            gaps.append(features.lip_gap)
            poses.append((features.yaw, pitch, features.roll))
            io = max(face.interocular, 1e-6)
            rigid.append(lm[list(RIGID_POINTS), :2] / io)
            forehead.append(_mean_outside_mouth(frame, lm))
            skin.append(skin_lab(frame, lm))
            if embedder is not None and reference_embedding is not None and frame_index % step == 0:
                distances.append(identity_distance(embedder.embed(frame, lm), reference_embedding))
        if on_frame is not None:
            on_frame(frame_index + 1, expected)
    count = frame_index + 1
    if count == 0:
        raise MediaError(f"{path.name} has no decodable frames; it may be corrupt")
    found = ~np.isnan(np.asarray(gaps, float))
    if not found.any():
        raise QualityError(f"no face found in any frame of {path.name}; this is not a talking-head video")
    poses_a = np.asarray(poses, float)
    yaw, pitch, roll = poses_a[:, 0], poses_a[:, 1], poses_a[:, 2]
    gated = found & (
        (np.abs(yaw) > limits.pose_gate_yaw_deg)
        | (np.abs(pitch) > limits.pose_gate_pitch_deg)
        | (np.abs(roll) > limits.pose_gate_roll_deg)
    )
    gap_series = _gated(np.asarray(gaps, float), gated, limits.pose_gate_action)

    audio = read_audio_mono(path, 16000)
    envelope = rms_envelope(audio, 16000, info.fps, count)
    usable = ~np.isnan(gap_series)
    filled = np.where(usable, gap_series, np.nanmedian(gap_series)) if usable.any() else gap_series
    silent = float(np.max(envelope, initial=0.0)) < 1e-4 or not measure_lipsync
    sync = correlation_at_best_lag(filled, envelope, info.fps)
    lipsync: dict[str, float | str | None] = {"correlation": sync["correlation"], "lag_ms": sync["lag_ms"]}
    if silent:  # nothing to sync to (e.g. a motion-only driver clip): not measured, not failed
        note = "silent audio: lip-sync not measured" if measure_lipsync else "still image: lip-sync not measured"
        lipsync = {"correlation": None, "lag_ms": None, "note": note}
    if bilabial_spans:
        closed, frames_inside = _closures(gap_series, bilabial_spans, info.fps)
        lipsync["closure_rate"] = round(float(np.mean(closed)), 3) if closed else 1.0
        lipsync["bilabial_phones"] = len(closed)
        lipsync["bilabial_frames"] = frames_inside

    rigid_a = np.asarray(rigid, float)
    accel = np.linalg.norm(rigid_a[2:] - 2 * rigid_a[1:-1] + rigid_a[:-2], axis=2).mean(axis=1)
    jitter = float(np.nanmedian(accel)) if np.isfinite(accel).any() else 0.0
    stability = {
        "flicker_face": round(_typical_step(np.asarray(forehead, float)), 3),
        "flicker_background": round(_typical_step(np.asarray(background, float)), 3),
        "landmark_jitter": round(jitter, 5),
    }
    stability["flicker"] = max(stability["flicker_face"], stability["flicker_background"])

    skin_a = np.asarray(skin, float)
    second = max(1, round(info.fps))
    first_lab, last_lab = np.nanmean(skin_a[:second], axis=0), np.nanmean(skin_a[-second:], axis=0)
    color: dict[str, float | None] = {"drift_delta_e": round(float(np.linalg.norm(last_lab - first_lab)), 2)}
    mean_lab = np.nanmean(skin_a, axis=0)
    reference_delta = float(np.linalg.norm(mean_lab - reference_lab)) if reference_lab is not None else None
    color["reference_delta_e"] = round(reference_delta, 2) if reference_delta is not None else None

    dist = np.asarray(distances, float)
    identity: dict[str, float | int | None] = {"sampled_frames": int(dist.size)}
    if dist.size:
        over = dist > limits.identity_max_distance
        identity.update(
            {
                "max_distance": round(float(dist.max()), 3),
                "mean_distance": round(float(dist.mean()), 3),
                "p99_distance": round(float(np.percentile(dist, 99)), 3),
                "min_similarity": round(float(1 - dist.max()), 3),
                "alarm_frames": int(over.sum()),
                "alarm_ratio": round(float(over.mean()), 3),
            }
        )

    pose = {
        "max_abs_yaw": round(float(np.nanmax(np.abs(yaw))), 1),
        "max_abs_pitch": round(float(np.nanmax(np.abs(pitch))), 1),
        "max_abs_roll": round(float(np.nanmax(np.abs(roll))), 1),
        "gated_frames": int(gated.sum()),
        "gated_ratio": round(float(gated.sum() / count), 3),
        "frames_without_face": int((~found).sum()),
    }

    failures = []
    if silent:
        pass
    elif sync["correlation"] <= -1.5:
        failures.append("lip-sync cannot be measured: the mouth does not move")
    elif sync["correlation"] < limits.lipsync_min_correlation:
        failures.append(
            f"lip-sync correlation {sync['correlation']:.2f} < {limits.lipsync_min_correlation} "
            f"(lag {sync['lag_ms']:.0f} ms)"
        )
    if not silent and abs(sync["lag_ms"]) > limits.lipsync_max_lag_ms:
        failures.append(f"mouth/audio offset {sync['lag_ms']:.0f} ms exceeds ±{limits.lipsync_max_lag_ms:.0f} ms")
    if "closure_rate" in lipsync and lipsync["closure_rate"] < limits.closure_min_rate:
        failures.append(f"lips closed in {lipsync['closure_rate']:.0%} of P/B/M phones < {limits.closure_min_rate:.0%}")
    if dist.size and identity["alarm_ratio"] > limits.identity_max_alarm_ratio:
        failures.append(
            f"identity: {identity['alarm_frames']} of {dist.size} sampled frames differ from the avatar "
            f"(distance up to {identity['max_distance']:.2f} > {limits.identity_max_distance})"
        )
    if pose["gated_ratio"] > limits.pose_max_gated_ratio:
        failures.append(f"pose gate: {pose['gated_frames']} frames turned beyond the gate ({pose['gated_ratio']:.0%})")
    if (~found).mean() > limits.pose_max_gated_ratio:
        failures.append(f"no face in {pose['frames_without_face']} of {count} frames")
    if stability["flicker"] > limits.flicker_max:
        failures.append(f"flicker {stability['flicker']:.2f} grey levels per frame > {limits.flicker_max}")
    if stability["landmark_jitter"] > limits.jitter_max:
        failures.append(f"landmark jitter {stability['landmark_jitter']:.4f} > {limits.jitter_max}")
    if color["drift_delta_e"] > limits.color_max_drift:
        failures.append(f"skin tone drifts ΔE {color['drift_delta_e']:.1f} > {limits.color_max_drift}")
    if color["reference_delta_e"] is not None and color["reference_delta_e"] > limits.color_max_reference_delta:
        failures.append(
            f"skin tone differs from the avatar by ΔE {color['reference_delta_e']:.1f} "
            f"> {limits.color_max_reference_delta}"
        )
    return QualityReport(
        passed=not failures,
        failures=tuple(failures),
        frames=count,
        fps=info.fps,
        lipsync=lipsync,
        identity=identity,
        pose=pose,
        stability=stability,
        color=color,
        seconds=time.perf_counter() - started,
        series={"lip_gap": [float(v) for v in gap_series], "audio_rms": [float(v) for v in envelope]},
    )


def _closures(gaps: np.ndarray, spans: list[tuple[float, float]], fps: float) -> tuple[list[bool], int]:
    """Per P/B/M phone: did the lips close in a frame of the phone, one frame either side allowed (the
    lip-sync lag tolerance)? Closed = a gap under 35 % of the open mouth (the 90th percentile gap).

    Judged per phone, not per frame: a short "b" spans one or two frames, and a per-frame rate made
    one borderline frame fail a whole video. The reference is the open mouth, not the median: in
    text dense with P/B/M ("Please bring my bank papers.") the median gap is itself nearly closed."""
    reference = float(np.nanpercentile(gaps, 90))
    closed, frames_inside = [], 0
    for start, end in spans:
        inside = [i for i in range(len(gaps)) if start <= (i + 0.5) / fps < end]
        frames_inside += len(inside)
        if not inside:
            continue
        window = gaps[max(inside[0] - 1, 0) : inside[-1] + 2]
        window = window[~np.isnan(window)]
        if len(window):
            closed.append(bool(window.min() < 0.35 * reference))
    return closed, frames_inside
