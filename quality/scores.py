"""The typed result of an evaluation: one model per monitor, and the report that gathers them.

Pydantic models, because the same objects go into the render report (`pipeline.report`), the REST
API's OpenAPI schema and the batch manifest; `None` means "not measured", never "passed"."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Scores(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LipSyncScores(Scores):
    correlation: float | None = None  # mouth opening vs audio RMS at the best lag (None: not measured)
    lag_ms: float | None = None  # + when the mouth trails the sound
    note: str | None = None  # why lip-sync was not measured (silent audio, a still)
    closure_rate: float | None = None  # share of P/B/M phones whose lips closed (None: too few to judge)
    bilabial_phones: int | None = None
    bilabial_frames: int | None = None


class IdentityScores(Scores):
    sampled_frames: int = 0
    max_distance: float | None = None  # dlib descriptor distance to the avatar (same person < 0.6)
    mean_distance: float | None = None
    p99_distance: float | None = None
    min_similarity: float | None = None  # 1 - max_distance
    alarm_frames: int | None = None  # samples farther than quality.identity.max_distance
    alarm_ratio: float | None = None


class PoseScores(Scores):
    max_abs_yaw: float
    max_abs_pitch: float
    max_abs_roll: float
    gated_frames: int  # frames turned beyond the pose gate (interpolated or dropped in the other scores)
    gated_ratio: float
    frames_without_face: int


class StabilityScores(Scores):
    flicker_face: float  # median frame-to-frame change of the brightness outside the mouth (grey levels)
    flicker_background: float  # the same for the top corners
    landmark_jitter: float  # median miss of rigid landmarks from their smooth motion, per interocular distance
    flicker: float  # the larger of the two flickers


class ColorScores(Scores):
    drift_delta_e: float  # skin tone, first vs last second (CIE76)
    reference_delta_e: float | None = None  # mean skin tone vs the avatar's photo


class ArtifactScores(Scores):
    seam: float | None = None  # strongest straight discontinuity of the upper head's motion
    seam_frames: tuple[int, int] | None = None  # first and last frame over the threshold
    interior_black: float | None = None  # largest near-black share inside an open mouth
    interior_black_frames: tuple[int, int] | None = None
    rim_black: float | None = None  # largest near-black share along the inner lips (a drawn outline)
    rim_black_frames: tuple[int, int] | None = None
    chin_follows_mouth: float | None = None  # correlation of chin drop with mouth opening
    mouth_motion: float = 0.0  # spread of the mouth opening (a still mouth has nothing to follow)
    blinks: int = 0
    blinks_per_minute: float = 0.0


class QualityReport(Scores):
    passed: bool
    failures: list[str]
    frames: int
    fps: float
    lipsync: LipSyncScores
    identity: IdentityScores
    pose: PoseScores
    stability: StabilityScores
    color: ColorScores
    artifacts: ArtifactScores = ArtifactScores()
    evaluation_seconds: float = 0.0
    # The scores of monitors added after these (quality/registry.py), by monitor name; each is the
    # monitor's own Scores model as JSON, so a saved report reads back without knowing the monitor.
    monitors: dict[str, dict[str, Any]] = {}
