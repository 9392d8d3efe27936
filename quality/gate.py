"""The quality gate: every threshold of `config/quality.yaml` checked against measured scores.

Kept apart from measuring so that the thresholds can be read (and changed) in one place, and each
failure is one sentence naming the measured value and the threshold it broke."""

from __future__ import annotations

from config import QualitySettings
from quality.scores import ArtifactScores, ColorScores, IdentityScores, LipSyncScores, PoseScores, StabilityScores

UNMEASURABLE = -1.5  # correlation_at_best_lag answers -2 when the mouth never moves
SHORTEST_JUDGED_FRAMES = 40  # the short-clip threshold applies in full up to this length


def required_correlation(frames: int, limits: QualitySettings) -> float:
    """The lip-sync threshold for a video of `frames` frames. A correlation measured over a short
    clip is noisy (its spread is about 1/sqrt(frames): ±0.17 over 35 frames), so a 1.4 s answer gets
    a lower bar than a long one, which must clear the full threshold from `short_clip_frames` on."""
    full, short = limits.lipsync_min_correlation, limits.lipsync_min_correlation_short
    span = max(limits.short_clip_frames - SHORTEST_JUDGED_FRAMES, 1)
    share = min(max((frames - SHORTEST_JUDGED_FRAMES) / span, 0.0), 1.0)
    return round(min(short, full) + share * (full - min(short, full)), 3)


def lipsync_failures(scores: LipSyncScores, limits: QualitySettings, frames: int = 10**6) -> list[str]:
    failures = []
    if scores.correlation is not None and scores.lag_ms is not None:
        required = required_correlation(frames, limits)
        if scores.correlation <= UNMEASURABLE:
            failures.append("lip-sync cannot be measured: the mouth does not move")
        elif scores.correlation < required:
            failures.append(f"lip-sync correlation {scores.correlation:.2f} < {required} (lag {scores.lag_ms:.0f} ms)")
        # On a clip shorter than `offset_min_frames` the best lag swings between 0 and ±200 ms on
        # landmark noise alone (an in-sync "Hello there." was refused as 200 ms late on some runs and
        # passed on others); its correlation is still judged, with the short-clip threshold.
        if frames >= limits.offset_min_frames and abs(scores.lag_ms) > limits.lipsync_max_lag_ms:
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


def _frames(span: tuple[int, int] | None) -> str:
    if span is None:
        return ""
    first, last = span
    return f" at frame {first}" if first == last else f" at frames {first}-{last}"


def artifact_failures(
    scores: ArtifactScores, duration_s: float, limits: QualitySettings, frames: int = 10**6
) -> list[str]:
    failures = []
    if scores.seam is not None and scores.seam > limits.seam_max:
        failures.append(
            f"seam or tear in the head{_frames(scores.seam_frames)}: motion jumps across a straight line "
            f"({scores.seam:.2f} > {limits.seam_max})"
        )
    if scores.interior_black is not None and scores.interior_black > limits.interior_black_max:
        failures.append(
            f"mouth interior is a black hole{_frames(scores.interior_black_frames)}: "
            f"{scores.interior_black:.0%} near-black > {limits.interior_black_max:.0%}"
        )
    if scores.rim_black is not None and scores.rim_black > limits.rim_black_max:
        failures.append(
            f"dark outline along the lips{_frames(scores.rim_black_frames)}: "
            f"{scores.rim_black:.0%} of the inner lip line near-black > {limits.rim_black_max:.0%}"
        )
    # A correlation over fewer frames than a short sentence has is noise (a 0.6 s "Hi." gives ±0.25).
    moving = scores.mouth_motion >= limits.frozen_mouth_motion and frames >= SHORTEST_JUDGED_FRAMES
    if moving and scores.chin_follows_mouth is not None and scores.chin_follows_mouth < limits.chin_min_correlation:
        failures.append(
            f"frozen jaw: the chin does not follow the mouth (correlation {scores.chin_follows_mouth:.2f} "
            f"< {limits.chin_min_correlation})"
        )
    if duration_s >= limits.frozen_eyes_after_s and scores.blinks == 0:
        failures.append(f"frozen eyes: no blink in {duration_s:.0f} s (speakers blink every 2-6 s)")
    return failures
