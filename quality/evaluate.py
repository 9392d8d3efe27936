"""Evaluate a video: observe it once, score every monitor, judge the scores against the gate.

`evaluate_video` works on any MP4 (ours or not); `evaluate_against_avatar` adds the avatar's
identity and skin colour as references (the render's gate and `dhf evaluate --avatar`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avatars.analysis import avatar_analysis
from avatars.library import Avatar
from config import Settings
from config.settings import QualitySettings
from media.video import read_audio_mono
from quality.gate import judge, score_context
from quality.observe import IdentityProbe, Observations, observe_video
from quality.reference import reference_of
from quality.scores import QualityReport
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
        identity = IdentityProbe(embedder, reference_embedding, limits.identity.sample_fps)
    seen = observe_video(path, analyser, limits.analysis_height, identity, on_frame, limits)
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
    context = score_context(seen, audio, AUDIO_RATE, limits, reference_lab, bilabial_spans, measure_lipsync)
    return judge(seen, context, limits)


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
    reference = reference_of(avatar_analysis(avatar, settings)) if avatar is not None else None
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
