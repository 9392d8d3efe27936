"""The quality gate: every configured monitor scored on one pass of observations and judged against
its own thresholds (`quality.<monitor>` in config/quality.yaml).

Kept apart from observing so that a new threshold can be tried on old observations; each failure is
one sentence, written by its monitor, naming the measured value and the threshold it broke."""

from __future__ import annotations

import numpy as np

from config.settings import QualitySettings
from quality.monitor import ScoreContext
from quality.observe import Observations
from quality.pose import gated_frames, without_gated
from quality.registry import monitors
from quality.scores import QualityReport, Scores


def score_context(
    seen: Observations,
    audio: np.ndarray,
    audio_rate: int,
    limits: QualitySettings,
    reference_lab: np.ndarray | None = None,
    bilabial_spans: list[tuple[float, float]] | None = None,
    measure_lipsync: bool = True,
) -> ScoreContext:
    """What all monitors share. Frames turned beyond the pose gate are decided first: lip-sync and
    the artifacts read the mouth opening with those frames interpolated (or dropped)."""
    pose = limits.pose
    gated = gated_frames(seen.pose, seen.face_found, (pose.gate_yaw_deg, pose.gate_pitch_deg, pose.gate_roll_deg))
    return ScoreContext(
        fps=seen.info.fps,
        count=seen.count,
        found=seen.face_found,
        pose=seen.pose,
        gated=gated,
        lip_gap=without_gated(seen.lip_gap, gated, pose.gate_action),
        audio=audio,
        audio_rate=audio_rate,
        bilabial_spans=bilabial_spans,
        measure_lipsync=measure_lipsync,
        reference_lab=reference_lab,
    )


def judge(seen: Observations, context: ScoreContext, limits: QualitySettings) -> QualityReport:
    """Each monitor's scores and failures, in the order of its settings section. A monitor the report
    has a field for fills it; any other's scores are reported under `monitors`."""
    scores: dict[str, Scores] = {}
    failures: list[str] = []
    for judged in monitors(limits):
        name = judged.monitor.name
        scores[name] = judged.monitor.score(seen.series.get(name, {}), context, judged.limits)
        failures += judged.monitor.failures(scores[name], context, judged.limits)
    fields = {name: value for name, value in scores.items() if name in QualityReport.model_fields}
    others = {name: value.model_dump(mode="json") for name, value in scores.items() if name not in fields}
    return QualityReport(
        passed=not failures,
        failures=failures,
        frames=seen.count,
        fps=context.fps,
        monitors=others,
        evaluation_seconds=0.0,
        **fields,
    )
