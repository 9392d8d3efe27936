"""Lip-sync monitor: the inner-lip gap against the audio's RMS envelope, and P/B/M closures."""

from __future__ import annotations

import numpy as np

from quality.measure import correlation_at_best_lag, rms_envelope
from quality.scores import LipSyncScores

CLOSED_SHARE_OF_OPEN = 0.35  # a gap under 35 % of the open mouth (90th percentile) counts as closed
SILENT_RMS = 1e-4


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
