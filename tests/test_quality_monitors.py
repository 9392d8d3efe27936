"""Each quality monitor on frames with known answers, through the monitor contract (quality/monitor.py):
a band of the forehead shifted by 12 px is a seam, an identical sequence has no flicker and no
jitter, a skin colour shifted by a known ΔE drifts by that ΔE, a mouth delayed by 4 frames is 160 ms
late, a painted black mouth is a black hole. The faces are the sample avatar's real landmarks (one
detection), the frames are synthetic; and a monitor added in its one place (its module and its
settings section) is observed, scored and judged without any other change."""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from config import load_settings
from config.errors import ConfigError
from config.settings import MonitorLimits, QualitySettings
from quality import artifacts, color, identity, lipsync, pose, stability
from quality.evaluate import AUDIO_RATE, score_observations
from quality.gate import score_context
from quality.monitor import FrameView, ObserveSetup, ScoreContext, SeriesObserver
from quality.observe import FrameObserver, Observations
from quality.registry import monitors
from quality.scores import Scores
from vision import topology as topo
from vision.analysis import Face
from vision.face_features import face_features
from vision.identity import IdentityEmbedder
from vision.models import ModelRegistry

PORTRAIT = Path(__file__).resolve().parents[1] / "avatars" / "sample" / "portrait.png"
FPS = 25.0
LIMITS = QualitySettings()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The sample portrait at the gate's analysis size (360 × 360)."""
    return cv2.resize(cv2.imread(str(PORTRAIT)), (360, 360), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def face(photo, analyser) -> Face:
    return analyser.single_face(photo)


def view(frame: np.ndarray, face: Face | None, index: int = 0) -> FrameView:
    seen = FrameView(frame, index, face, None)
    if face is not None:
        seen.features = face_features(face.landmarks, seen.grey)
    return seen


def observe(monitor, frames, face, setup: ObserveSetup | None = None) -> dict[str, np.ndarray]:
    setup = setup or ObserveSetup(FPS)
    observer = monitor.observer(setup)
    for index, frame in enumerate(frames, setup.start):
        observer.add(view(frame, face, index))
    return observer.export()


def context(count: int, lip_gap=None, audio=None, pose_deg=None, reference_lab=None) -> ScoreContext:
    poses = np.zeros((count, 3)) if pose_deg is None else pose_deg
    found = np.ones(count, bool)
    gated = pose.gated_frames(poses, found, (60.0, 45.0, 45.0))
    return ScoreContext(
        fps=FPS,
        count=count,
        found=found,
        pose=poses,
        gated=gated,
        lip_gap=np.full(count, 0.1) if lip_gap is None else lip_gap,
        audio=np.zeros(int(count / FPS * AUDIO_RATE)) if audio is None else audio,
        audio_rate=AUDIO_RATE,
        reference_lab=reference_lab,
    )


def judge(monitor, series, ctx, limits):
    scores = monitor.score(series, ctx, limits)
    return scores, monitor.failures(scores, ctx, limits)


def test_the_registry_holds_one_monitor_per_settings_section():
    assert [j.monitor.name for j in monitors(LIMITS)] == [
        "lipsync",
        "identity",
        "pose",
        "stability",
        "color",
        "artifacts",
    ]


# --- artifacts ---------------------------------------------------------------------------------


def test_a_forehead_band_shifted_by_12_px_is_a_seam_and_a_still_head_is_not(photo, face):
    monitor, limits = artifacts.MONITOR, LIMITS.artifacts
    top = int(face.landmarks[topo.FOREHEAD, 1])
    torn = photo.copy()
    torn[top : top + 25] = np.roll(photo[top : top + 25], 12, axis=1)  # the forehead torn sideways
    series = observe(monitor, [photo, photo, torn, photo], face)
    assert np.isnan(series["seam"][0])  # no motion before the first frame
    assert series["seam"][1] < 0.01, series["seam"]  # identical frames: no discontinuity at all
    assert series["seam"][2] > 2 * limits.seam_max and series["seam"][3] > 2 * limits.seam_max, series["seam"]
    scores, failures = judge(monitor, series, context(4), limits)
    assert scores.seam_frames == (2, 3)
    assert failures and failures[0].startswith("seam or tear in the head at frames 2-3"), failures
    still = observe(monitor, [photo] * 4, face)
    assert judge(monitor, still, context(4), limits) == (monitor.score(still, context(4), limits), [])


def test_a_mouth_painted_black_is_a_black_hole(photo, face):
    monitor, limits = artifacts.MONITOR, LIMITS.artifacts
    inner = np.concatenate(
        [face.landmarks[list(topo.LIPS_INNER_UPPER), :2], face.landmarks[list(topo.LIPS_INNER_LOWER), :2][::-1]]
    )
    black, dark = photo.copy(), photo.copy()
    cv2.fillPoly(black, [np.round(inner).astype(np.int32)], (0, 0, 0))
    cv2.fillPoly(dark, [np.round(inner).astype(np.int32)], (40, 40, 40))  # dark, not near-black (< 28)
    series = observe(monitor, [photo, black, dark], face)
    assert series["black_share"][0] < limits.interior_black_max  # the photo's own mouth (teeth, lips)
    assert series["black_share"][1] > 0.9 and series["rim_darkness"][1] > limits.rim_black_max, series
    assert series["black_share"][2] < 0.1, series  # a dark mouth is a mouth, not a hole
    _, failures = judge(monitor, series, context(3), limits)
    assert any(f.startswith("mouth interior is a black hole at frame 1:") for f in failures), failures


def test_blinks_and_a_frozen_jaw_are_counted_from_their_series():
    monitor, limits = artifacts.MONITOR, LIMITS.artifacts
    count = 600  # 24 s: long enough that no blink is a failure
    eyes = np.full(count, 40.0)
    eyes[[100, 101, 300, 500]] = 30.0  # three closed lids (one of two frames), 25 % under the median
    opening = 0.1 + 0.05 * np.sin(np.arange(count) / 4)
    series = {"seam": np.full(count, np.nan), "black_share": np.full(count, np.nan),
              "rim_darkness": np.full(count, np.nan), "chin": 1.5 + opening, "eyes": eyes}  # fmt: skip
    scores, failures = judge(monitor, series, context(count, lip_gap=opening), limits)
    assert scores.blinks == 3 and scores.chin_follows_mouth == 1.0 and failures == [], (scores, failures)
    frozen = series | {"chin": np.full(count, 1.5), "eyes": np.full(count, 40.0)}
    scores, failures = judge(monitor, frozen, context(count, lip_gap=opening), limits)
    assert scores.blinks == 0 and scores.chin_follows_mouth == 0.0
    assert [f.split(":")[0] for f in failures] == ["frozen jaw", "frozen eyes"], failures


# --- stability -----------------------------------------------------------------------------------


def test_an_identical_sequence_has_zero_flicker_and_zero_jitter(photo, face):
    monitor, limits = stability.MONITOR, LIMITS.stability
    series = observe(monitor, [photo] * 12, face)
    scores, failures = judge(monitor, series, context(12), limits)
    assert (scores.flicker, scores.landmark_jitter) == (0.0, 0.0) and failures == [], scores


def test_a_brightness_that_alternates_by_2_grey_levels_flickers_by_2(photo, face):
    monitor, limits = stability.MONITOR, LIMITS.stability
    brighter = cv2.add(photo, np.full_like(photo, 2))  # no pixel of the portrait is near 255
    series = observe(monitor, [photo, brighter] * 6, face)
    scores, failures = judge(monitor, series, context(12), limits)
    assert scores.flicker_face == pytest.approx(2.0, abs=0.01) and scores.flicker_background == 2.0, scores
    assert failures == [f"flicker {scores.flicker:.2f} grey levels per frame > {limits.flicker_max}"]


def test_landmarks_shaken_by_a_known_step_are_jitter(face):
    """Rigid points that jump ±d px every other frame on a still head: the quadratic through the three
    frames on either side (values -d, +d, -d at 1, 2, 3 frames away) is -d/7 - 2d t²/49, so each frame
    misses it by 8d/7 at best (t = 0): the jitter is 8d / (7 × interocular distance)."""
    monitor, limits = stability.MONITOR, LIMITS.stability
    rigid = np.repeat(face.landmarks[list(stability.JITTER_POINTS), :2][None].astype(float), 21, axis=0)
    interocular = np.full(21, face.interocular)
    steady = {"outside": np.zeros(21), "background": np.zeros(21), "rigid": rigid, "interocular": interocular}
    assert judge(monitor, steady, context(21), limits) == (monitor.score(steady, context(21), limits), [])
    assert monitor.score(steady, context(21), limits).landmark_jitter == 0.0
    sign = (np.arange(21) % 2 * 2 - 1)[:, None, None]
    for d, fails in ((0.2, False), (0.5, True)):  # 0.2 px: 0.0075 < 0.012 < 0.019 for 0.5 px
        shaken = steady | {"rigid": rigid + np.array([d, 0.0]) * sign}
        scores, failures = judge(monitor, shaken, context(21), limits)
        assert scores.landmark_jitter == pytest.approx(8 * d / (7 * face.interocular), abs=1e-5), scores
        assert bool(failures) is fails and all(f.startswith("landmark jitter") for f in failures), failures


# --- colour --------------------------------------------------------------------------------------


def _skin_frame(photo: np.ndarray, lab: tuple[float, float, float]) -> np.ndarray:
    bgr = cv2.cvtColor(np.array([[lab]], np.float32), cv2.COLOR_LAB2BGR)[0, 0]
    return np.tile(np.clip(np.round(bgr * 255), 0, 255).astype(np.uint8), (*photo.shape[:2], 1))


def test_a_skin_tone_shifted_by_a_known_delta_e_drifts_by_it(photo, face):
    """The second second's skin is the first's moved by (ΔL, Δa, Δb) = (3, 0, 4) in Lab: ΔE 5."""
    monitor, limits = color.MONITOR, LIMITS.color
    first, last = (62.0, 14.0, 18.0), (65.0, 14.0, 22.0)
    frames = [_skin_frame(photo, first)] * 25 + [_skin_frame(photo, last)] * 25
    series = observe(monitor, frames, face)
    scores, failures = judge(monitor, series, context(50, reference_lab=np.array(first)), limits)
    assert scores.drift_delta_e == pytest.approx(5.0, abs=0.3), scores
    assert scores.reference_delta_e == pytest.approx(2.5, abs=0.3), scores  # the mean is half-way
    assert failures == [f"skin tone drifts ΔE {scores.drift_delta_e:.1f} > {limits.max_drift}"]
    steady = observe(monitor, [_skin_frame(photo, first)] * 50, face)
    assert judge(monitor, steady, context(50), limits)[0].drift_delta_e < 0.1


# --- lip-sync -------------------------------------------------------------------------------------


def _speech(count: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(a mouth opening per frame, audio whose RMS envelope follows it): a 200 Hz tone, syllables at
    random strengths, 4 frames each."""
    rng = np.random.default_rng(seed)
    syllables = np.repeat(rng.uniform(0.05, 1.0, count // 4 + 1), 4)[:count]
    opening = np.convolve(syllables, np.ones(3) / 3, mode="same")
    samples = np.arange(int(count / FPS * AUDIO_RATE))
    loudness = np.interp(samples / AUDIO_RATE * FPS - 0.5, np.arange(count), opening)
    return 0.1 * opening, 0.3 * loudness * np.sin(2 * np.pi * 200 * samples / AUDIO_RATE)


def test_a_mouth_delayed_by_4_frames_is_measured_160_ms_late():
    monitor, limits = lipsync.MONITOR, LIMITS.lipsync
    opening, audio = _speech(100)
    scores, failures = judge(monitor, {}, context(100, lip_gap=opening, audio=audio), limits)
    assert scores.lag_ms == 0.0 and scores.correlation > 0.9 and failures == [], scores
    late = np.concatenate([np.full(4, opening[0]), opening[:-4]])
    scores, failures = judge(monitor, {}, context(100, lip_gap=late, audio=audio), limits)
    assert scores.lag_ms == 160.0, scores
    assert failures == ["mouth/audio offset 160 ms exceeds ±80 ms"], failures


def test_a_still_mouth_cannot_be_measured_and_silence_is_not_judged():
    monitor, limits = lipsync.MONITOR, LIMITS.lipsync
    _, audio = _speech(100)
    scores, failures = judge(monitor, {}, context(100, lip_gap=np.full(100, 0.05), audio=audio), limits)
    assert scores.correlation == -2.0 and failures == ["lip-sync cannot be measured: the mouth does not move"]
    scores, failures = judge(monitor, {}, context(100, lip_gap=_speech(100)[0]), limits)
    assert scores.note == "silent audio: lip-sync not measured" and failures == []


# --- pose ------------------------------------------------------------------------------------------


def test_frames_turned_beyond_the_gate_are_counted_and_interpolated():
    monitor, limits = pose.MONITOR, LIMITS.pose
    angles = np.zeros((100, 3))
    angles[40:48, 0] = 70.0  # 8 frames turned 70° (the gate: 60°)
    gap = np.linspace(0.0, 0.99, 100)
    gap_seen = gap.copy()
    gap_seen[40:48] = 0.5  # what a turned face's landmarks say
    seen = Observations(info=types.SimpleNamespace(fps=FPS), count=100, lip_gap=gap_seen, pose=angles, series={})
    ctx = score_context(seen, np.zeros(AUDIO_RATE), AUDIO_RATE, LIMITS)
    assert np.flatnonzero(ctx.gated).tolist() == list(range(40, 48))
    np.testing.assert_allclose(ctx.lip_gap, gap)  # the gated frames interpolated from their neighbours
    scores, failures = judge(monitor, {}, ctx, limits)
    assert (scores.gated_frames, scores.gated_ratio, scores.max_abs_yaw) == (8, 0.08, 70.0), scores
    assert failures == ["pose gate: 8 frames turned beyond the gate (8%)"]


# --- identity --------------------------------------------------------------------------------------


def test_identity_is_sampled_at_its_rate_and_a_stranger_alarms(photo, face, settings):
    """At 25 fps and 0.5 samples a second, frames 0 and 50 of 60 are embedded (however the video is
    cut): the portrait against its own embedding is at distance ~0; against an embedding far from
    it (its negation) every sample alarms."""
    monitor, limits = identity.MONITOR, LIMITS.identity
    embedder = IdentityEmbedder(ModelRegistry(settings.paths.models))
    own = embedder.embed(photo, face.landmarks)
    probe = identity.IdentityProbe(embedder, own, limits.sample_fps)
    series = observe(monitor, [photo] * 60, face, ObserveSetup(FPS, 0, probe))
    assert len(series["distances"]) == 2 and series["distances"].max() < 0.05, series
    scores, failures = judge(monitor, series, context(60), limits)
    assert scores.sampled_frames == 2 and scores.alarm_frames == 0 and failures == []
    stranger = identity.IdentityProbe(embedder, -own, limits.sample_fps)
    far = observe(monitor, [photo] * 60, face, ObserveSetup(FPS, 10, stranger))  # a chunk from frame 10
    assert len(far["distances"]) == 1  # only frame 50 of the whole video is in it
    scores, failures = judge(monitor, far, context(60), limits)
    assert scores.alarm_ratio == 1.0 and failures[0].startswith("identity: 1 of 1 sampled frames differ"), failures


# --- a new monitor, added in its one place ----------------------------------------------------------


class RedLimits(MonitorLimits):
    max_red_share: float = 0.5


class RedScores(Scores):
    red_share: float


class RedObserver(SeriesObserver):
    SERIES: ClassVar[tuple[str, ...]] = ("red",)

    def add(self, view: FrameView) -> None:
        b, g, r = cv2.mean(view.frame)[:3]
        self.values["red"].append(r > 1.5 * max(g, b))


@dataclasses.dataclass(frozen=True)
class RedMonitor:
    """A monitor the product does not have: the share of frames that are mostly red."""

    name: str = "red_frames"

    def observer(self, setup: ObserveSetup) -> RedObserver:
        return RedObserver()

    def score(self, series: Mapping[str, np.ndarray], context: ScoreContext, limits: RedLimits) -> RedScores:
        return RedScores(red_share=round(float(np.mean(series["red"])), 3))

    def failures(self, scores: RedScores, context: ScoreContext, limits: RedLimits) -> list[str]:
        return [f"red frames: {scores.red_share:.0%}"] if scores.red_share > limits.max_red_share else []


class QualityWithRed(QualitySettings):
    """What adding the monitor's section to `QualitySettings` in config/settings.py amounts to."""

    red_frames: RedLimits = RedLimits()


@pytest.fixture
def red_module(monkeypatch):
    """`quality/red_frames.py`, the monitor's module, without writing into the package."""
    module = types.ModuleType("quality.red_frames")
    module.MONITOR = RedMonitor()
    monkeypatch.setitem(sys.modules, "quality.red_frames", module)


def test_a_monitor_added_in_its_one_place_is_observed_scored_and_fails_the_gate(red_module, photo, analyser):
    limits = QualityWithRed.model_validate({"red_frames": {"max_red_share": 0.25}, "seam_max": 0.5})
    assert limits.artifacts.seam_max == 0.5  # the old flat keys still load beside a new section
    red = photo.copy()
    red[..., 2] = 250
    observer = FrameObserver(analyser, FPS, limits=limits)
    for frame in [photo] * 6 + [red] * 4:
        observer.add(frame)
    seen = observer.result(types.SimpleNamespace(fps=FPS), "red.mp4")
    report = score_observations(seen, np.zeros(AUDIO_RATE), limits)
    assert report.monitors == {"red_frames": {"red_share": 0.4}}, report.monitors
    assert report.passed is False and "red frames: 40%" in report.failures, report.failures
    chunk = FrameObserver(analyser, FPS, limits=limits, start=10)  # a long render's next chunk
    chunk.add(red)
    observer.extend(chunk.export())
    assert observer.observers["red_frames"].values["red"][-1] == 1.0
    assert score_observations(seen, np.zeros(AUDIO_RATE), QualitySettings()).monitors == {}


# --- settings ----------------------------------------------------------------------------------------


def test_a_user_config_with_the_old_flat_keys_still_loads(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("quality:\n  seam_max: 0.45\n  identity_max_distance: 0.5\n  pose_gate_action: drop\n")
    quality = load_settings(old, home=tmp_path).quality
    assert (quality.artifacts.seam_max, quality.identity.max_distance, quality.pose.gate_action) == (0.45, 0.5, "drop")
    assert quality.lipsync == QualitySettings().lipsync  # the rest keeps the packaged defaults
    new = tmp_path / "new.yaml"
    new.write_text("quality:\n  artifacts:\n    seam_max: 0.45\n")
    assert load_settings(new, home=tmp_path).quality.artifacts.seam_max == 0.45
    typo = tmp_path / "typo.yaml"
    typo.write_text("quality:\n  artifacts:\n    seam_maxx: 0.45\n")
    with pytest.raises(ConfigError, match=r"quality\.artifacts\.seam_maxx: unknown key"):
        load_settings(typo, home=tmp_path)
