"""The quality gate: every threshold of `config/quality.yaml` checked against measured scores.

Kept apart from measuring so that the thresholds can be read (and changed) in one place, and each
failure is one sentence naming the measured value and the threshold it broke."""

from __future__ import annotations

from config import QualitySettings
from quality.scores import ColorScores, IdentityScores, LipSyncScores, PoseScores, StabilityScores

UNMEASURABLE = -1.5  # correlation_at_best_lag answers -2 when the mouth never moves


def lipsync_failures(scores: LipSyncScores, limits: QualitySettings) -> list[str]:
    failures = []
    if scores.correlation is not None and scores.lag_ms is not None:
        if scores.correlation <= UNMEASURABLE:
            failures.append("lip-sync cannot be measured: the mouth does not move")
        elif scores.correlation < limits.lipsync_min_correlation:
            failures.append(
                f"lip-sync correlation {scores.correlation:.2f} < {limits.lipsync_min_correlation} "
                f"(lag {scores.lag_ms:.0f} ms)"
            )
        if abs(scores.lag_ms) > limits.lipsync_max_lag_ms:
            failures.append(f"mouth/audio offset {scores.lag_ms:.0f} ms exceeds ±{limits.lipsync_max_lag_ms:.0f} ms")
    if scores.closure_rate is not None and scores.closure_rate < limits.closure_min_rate:
        failures.append(f"lips closed in {scores.closure_rate:.0%} of P/B/M phones < {limits.closure_min_rate:.0%}")
    return failures


def identity_failures(scores: IdentityScores, limits: QualitySettings) -> list[str]:
    if not scores.sampled_frames or scores.alarm_ratio is None or scores.alarm_ratio <= limits.identity_max_alarm_ratio:
        return []
    return [
        f"identity: {scores.alarm_frames} of {scores.sampled_frames} sampled frames differ from the avatar "
        f"(distance up to {scores.max_distance:.2f} > {limits.identity_max_distance})"
    ]


def pose_failures(scores: PoseScores, frames: int, limits: QualitySettings) -> list[str]:
    failures = []
    if scores.gated_ratio > limits.pose_max_gated_ratio:
        failures.append(f"pose gate: {scores.gated_frames} frames turned beyond the gate ({scores.gated_ratio:.0%})")
    if scores.frames_without_face / max(frames, 1) > limits.pose_max_gated_ratio:
        failures.append(f"no face in {scores.frames_without_face} of {frames} frames")
    return failures


def stability_failures(scores: StabilityScores, limits: QualitySettings) -> list[str]:
    failures = []
    if scores.flicker > limits.flicker_max:
        failures.append(f"flicker {scores.flicker:.2f} grey levels per frame > {limits.flicker_max}")
    if scores.landmark_jitter > limits.jitter_max:
        failures.append(f"landmark jitter {scores.landmark_jitter:.4f} > {limits.jitter_max}")
    return failures


def color_failures(scores: ColorScores, limits: QualitySettings) -> list[str]:
    failures = []
    if scores.drift_delta_e > limits.color_max_drift:
        failures.append(f"skin tone drifts ΔE {scores.drift_delta_e:.1f} > {limits.color_max_drift}")
    if scores.reference_delta_e is not None and scores.reference_delta_e > limits.color_max_reference_delta:
        failures.append(
            f"skin tone differs from the avatar by ΔE {scores.reference_delta_e:.1f} "
            f"> {limits.color_max_reference_delta}"
        )
    return failures
