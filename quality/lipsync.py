"""Lip-sync monitor: the inner-lip gap against the audio's RMS envelope, and P/B/M closures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from config.settings import LipSyncLimits
from quality.measure import correlation_at_best_lag, rms_envelope
from quality.monitor import SHORTEST_JUDGED_FRAMES, ObserveSetup, ScoreContext
from quality.scores import LipSyncScores

CLOSED_SHARE_OF_OPEN = 0.35  # a gap under 35 % of the open mouth (90th percentile) counts as closed
SILENT_RMS = 1e-4
UNMEASURABLE = -1.5  # correlation_at_best_lag answers -2 when the mouth never moves


def closures(gaps: np.ndarray, spans: list[tuple[float, float]], fps: float) -> tuple[list[bool], int]:
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
            closed.append(bool(window.min() < CLOSED_SHARE_OF_OPEN * reference))
    return closed, frames_inside


def lipsync_scores(
    lip_gap: np.ndarray,
    audio: np.ndarray,
    audio_rate: int,
    fps: float,
    bilabial_spans: list[tuple[float, float]] | None,
    measure: bool = True,
    min_closures: int = 3,
) -> LipSyncScores:
    """`measure=False` for a still (nothing moves on purpose); silent audio is not measured either.
    Closure is judged only on `min_closures` P/B/M phones or more: on one or two short phones (a
    "Good morning.") a single borderline frame would decide the whole video."""
    envelope = rms_envelope(audio, audio_rate, fps, len(lip_gap))
    usable = ~np.isnan(lip_gap)
    filled = np.where(usable, lip_gap, np.nanmedian(lip_gap)) if usable.any() else lip_gap
    closure: dict[str, float | int | None] = {}
    if bilabial_spans:
        closed, frames_inside = closures(lip_gap, bilabial_spans, fps)
        closure = {
            "closure_rate": round(float(np.mean(closed)), 3) if len(closed) >= min_closures else None,
            "bilabial_phones": len(closed),
            "bilabial_frames": frames_inside,
        }
    if not measure:
        return LipSyncScores(note="still image: lip-sync not measured", **closure)
    if float(np.max(envelope, initial=0.0)) < SILENT_RMS:  # nothing to sync to, e.g. a motion-only clip
        return LipSyncScores(note="silent audio: lip-sync not measured", **closure)
    sync = correlation_at_best_lag(filled, envelope, fps)
    return LipSyncScores(correlation=sync["correlation"], lag_ms=sync["lag_ms"], **closure)


def required_correlation(frames: int, limits: LipSyncLimits) -> float:
    """The lip-sync threshold for a video of `frames` frames. A correlation measured over a short
    clip is noisy (its spread is about 1/sqrt(frames): ±0.17 over 35 frames), so a 1.4 s answer gets
    a lower bar than a long one, which must clear the full threshold from `short_clip_frames` on."""
    full, short = limits.min_correlation, limits.min_correlation_short
    span = max(limits.short_clip_frames - SHORTEST_JUDGED_FRAMES, 1)
    share = min(max((frames - SHORTEST_JUDGED_FRAMES) / span, 0.0), 1.0)
    return round(min(short, full) + share * (full - min(short, full)), 3)


def lipsync_failures(scores: LipSyncScores, limits: LipSyncLimits, frames: int = 10**6) -> list[str]:
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
        if frames >= limits.offset_min_frames and abs(scores.lag_ms) > limits.max_lag_ms:
            failures.append(f"mouth/audio offset {scores.lag_ms:.0f} ms exceeds ±{limits.max_lag_ms:.0f} ms")
    if scores.closure_rate is not None and scores.closure_rate < limits.closure_min_rate:
        failures.append(f"lips closed in {scores.closure_rate:.0%} of P/B/M phones < {limits.closure_min_rate:.0%}")
    return failures


@dataclass(frozen=True)
class LipSyncMonitor:
    """Reads the shared mouth opening (pose-gated frames interpolated) and the audio: no series of its own."""

    name: str = "lipsync"

    def observer(self, setup: ObserveSetup) -> None:
        return None

    def score(self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: LipSyncLimits) -> LipSyncScores:
        return lipsync_scores(
            context.lip_gap,
            context.audio,
            context.audio_rate,
            context.fps,
            context.bilabial_spans,
            context.measure_lipsync,
            limits.closure_min_phones,
        )

    def failures(self, scores: LipSyncScores, context: ScoreContext, limits: LipSyncLimits) -> list[str]:
        return lipsync_failures(scores, limits, context.count)


MONITOR = LipSyncMonitor()
