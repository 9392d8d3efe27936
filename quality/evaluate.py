"""Evaluate a video: observe it once, score every monitor, judge the scores against the gate.

`evaluate_video` works on any MP4 (ours or not); `evaluate_against_avatar` adds the avatar's
identity and skin colour as references (the render's gate and `dhf evaluate --avatar`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avatars.library import Avatar
from config import Settings
from config.settings import QualitySettings
from media.video import read_audio_mono
from quality import gate
from quality.artifacts import artifact_scores
from quality.color import color_scores
from quality.identity import identity_scores
from quality.lipsync import lipsync_scores
from quality.observe import IdentityProbe, Observations, observe_video
from quality.pose import gated_frames, pose_scores, without_gated
from quality.reference import avatar_reference
from quality.scores import QualityReport
from quality.stability import stability_scores
from vision.analysis import FaceAnalyser
from vision.identity import IdentityEmbedder
from vision.models import ModelRegistry

AUDIO_RATE = 16000


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
    identity = None
    if embedder is not None and reference_embedding is not None:
        identity = IdentityProbe(embedder, reference_embedding, limits.identity_sample_fps)
    seen = observe_video(path, analyser, limits.analysis_height, identity, on_frame)
    audio = read_audio_mono(path, AUDIO_RATE)
    report = score_observations(seen, audio, limits, reference_lab, bilabial_spans, measure_lipsync)
    return report.model_copy(update={"evaluation_seconds": round(time.perf_counter() - started, 2)})


def score_observations(
    seen: Observations,
    audio: np.ndarray,
    limits: QualitySettings,
    reference_lab: np.ndarray | None = None,
    bilabial_spans: list[tuple[float, float]] | None = None,
    measure_lipsync: bool = True,
) -> QualityReport:
    """Every monitor's scores from one pass of observations (of a file, or of the frames a render
    handed to its encoder) and the audio, judged against the thresholds."""
    fps = seen.info.fps
    gated = gated_frames(
        seen.pose, seen.face_found, (limits.pose_gate_yaw_deg, limits.pose_gate_pitch_deg, limits.pose_gate_roll_deg)
    )
    lip_gap = without_gated(seen.lip_gap, gated, limits.pose_gate_action)
    lipsync = lipsync_scores(
        lip_gap, audio, AUDIO_RATE, fps, bilabial_spans, measure_lipsync, limits.closure_min_phones
    )
    identity_result = identity_scores(seen.identity_distances, limits.identity_max_distance)
    pose = pose_scores(seen.pose, seen.face_found, gated)
    stability = stability_scores(seen.outside_mouth, seen.background, seen.rigid, seen.interocular)
    color = color_scores(seen.skin, fps, reference_lab)
    artifacts = artifact_scores(seen, fps, lip_gap, limits)
    failures = [
        *gate.lipsync_failures(lipsync, limits, seen.count),
        *gate.identity_failures(identity_result, limits),
        *gate.pose_failures(pose, seen.count, limits),
        *gate.stability_failures(stability, limits),
        *gate.color_failures(color, limits),
        *gate.artifact_failures(artifacts, seen.count / max(fps, 1e-6), limits, seen.count),
    ]
    return QualityReport(
        passed=not failures,
        failures=failures,
        frames=seen.count,
        fps=fps,
        lipsync=lipsync,
        identity=identity_result,
        pose=pose,
        stability=stability,
        color=color,
        artifacts=artifacts,
        evaluation_seconds=0.0,
    )


def evaluate_against_avatar(
    video: Path,
    avatar: Avatar | None,
    settings: Settings,
    bilabial_spans: list[tuple[float, float]] | None = None,
    still: bool = False,
) -> QualityReport:
    """Evaluate a video against the thresholds and, when given, the avatar (a still is exempt from
    lip-sync: it does not move on purpose)."""
    registry = ModelRegistry(settings.paths.models)
    analyser = FaceAnalyser(registry, settings.face.detector_min_score)
    embedder = IdentityEmbedder(registry) if avatar is not None else None
    reference = (
        avatar_reference(avatar, analyser, embedder, settings.images.max_pixels)
        if avatar is not None and embedder
        else None
    )
    return evaluate_video(
        video,
        analyser,
        settings.quality,
        embedder,
        reference.embedding if reference else None,
        reference.skin_lab if reference else None,
        None if still else bilabial_spans,
        measure_lipsync=not still,
    )
