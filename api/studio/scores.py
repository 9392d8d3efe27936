"""Quality scores beside the thresholds they are judged against, for the review and video pages.

Why the thresholds come from the server's settings rather than the report: the report stores what
was measured; the gate that held or passed the video used `settings.quality`, and a reviewer wants
to see how far each number is from that gate (the lip-sync bar is lower for short clips, as
quality.lipsync.required_correlation computes it).
"""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from quality.lipsync import required_correlation


@dataclass(frozen=True)
class ScoreRow:
    name: str
    label: str
    value: float
    relation: str  # "≥" or "≤"
    threshold: float | None

    @property
    def passed(self) -> bool | None:
        if self.threshold is None:
            return None
        return self.value >= self.threshold if self.relation == "≥" else abs(self.value) <= self.threshold


def score_rows(quality: dict[str, float], settings: Settings, frames: int) -> list[ScoreRow]:
    """One row per headline score (pipeline.run.quality_scores names), unknown names without a threshold."""
    limits = settings.quality
    known: dict[str, tuple[str, str, float]] = {
        "lipsync_correlation": ("Lip-sync correlation", "≥", required_correlation(frames, limits.lipsync)),
        "lipsync_lag_ms": ("Lip-sync lag (ms)", "≤", limits.lipsync.max_lag_ms),
        "closure_rate": ("Lip closure on P/B/M", "≥", limits.lipsync.closure_min_rate),
        "identity_max_distance": ("Identity distance (max)", "≤", limits.identity.max_distance),
        "flicker": ("Flicker", "≤", limits.stability.flicker_max),
        "landmark_jitter": ("Landmark jitter", "≤", limits.stability.jitter_max),
        "color_drift_delta_e": ("Colour drift (ΔE)", "≤", limits.color.max_drift),
    }
    rows = []
    for name, value in quality.items():
        label, relation, threshold = known.get(name, (name.replace("_", " "), "", None))
        rows.append(ScoreRow(name, label, value, relation, threshold))
    return rows
