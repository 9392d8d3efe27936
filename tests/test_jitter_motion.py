"""The landmark-jitter monitor on real motion (issue 26): smooth whole-head motion (a ±20° turn, a
phone's sway, roll and nods with a lean-in, 30→25 fps resampling, motion blur, a handheld camera)
is not jitter, wherever the head sits in the frame; a face that shakes from frame to frame still
is, on a steady or a moving head. Clips are the engine's real frames of the sample avatar at the
gate's analysis size (recipes in `recorded_motion` and `jitter_motion`)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import provisioned_models
from jitter_motion import face_shake, jitter_of, off_centre, shake
from recorded_motion import analysis_frames, handheld, motion_blur, phone_track, resample
from second_face import second_face
from speaking_recording import make_recording

from devtools.preview import preview_engine, sweep_track
from driver_synth.track import MotionTrack
from media.video import EncodeOptions, VideoWriter, read_frames
from quality.evaluate import evaluate_video


def _talking(fps: int, seconds: float) -> MotionTrack:
    t = np.arange(round(fps * seconds)) / fps
    return MotionTrack.from_channels(fps, {"jaw_open": 0.45 * (1 + np.sin(2 * np.pi * 3.1 * t)) / 2})


@pytest.fixture(scope="module")
def engine(settings):
    return preview_engine("sample", settings)


@pytest.fixture(scope="module")
def still(engine):
    return analysis_frames(engine, _talking(25, 2.0))


@pytest.fixture(scope="module")
def phone(engine):
    return analysis_frames(engine, phone_track(25, 2.0))  # up to 30 px per frame at 1080p


SLOW_CLIPS = {
    "lean-in": lambda engine, still, phone: analysis_frames(engine, phone_track(25, 2.0, lean_in=0.3, sway=0.1)),
    "sweep ±20°": lambda engine, still, phone: analysis_frames(engine, sweep_track(25, 2.0)),
    "phone, motion blur": lambda engine, still, phone: motion_blur(phone),
    "handheld camera": lambda engine, still, phone: handheld(still, 25),
}
CLIPS = {
    "still": lambda engine, still, phone: still,
    "phone": lambda engine, still, phone: phone,
    # Nearest frame by timestamp: one doubled step in six, a frame up to 0.4 source frames late.
    "phone 30→25 fps": lambda engine, still, phone: resample(analysis_frames(engine, phone_track(30, 2.0)), 30, 25),
    **SLOW_CLIPS,
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CLIPS else n for n in CLIPS])
def test_smooth_whole_head_motion_is_not_jitter(engine, still, phone, analyser, settings, name):
    """Measured (threshold 0.012): still 0.0034, phone 0.0064, 30→25 fps 0.0083, lean-in 0.0067,
    sweep 0.0064, blur 0.0067, handheld 0.0066."""
    jitter = jitter_of(CLIPS[name](engine, still, phone), analyser)
    assert jitter < 0.8 * settings.quality.stability.jitter_max, (name, jitter)


@pytest.mark.parametrize(
    ("name", "recipe"),
    [
        ("steady head, frame shaken by 3 px", lambda frames, analyser: shake(frames, 3)),
        ("moving head, face shaken by 3 px", lambda frames, analyser: face_shake(frames, 3, analyser)),
    ],
)
def test_a_shaking_face_is_jitter(still, phone, analyser, settings, name, recipe):
    """σ 3 px per axis at 1080p (1 px at the analysis size). Measured: 0.0194 (steady, whole frame),
    0.0134 (face only, on the phone clip's fast motion, where part of the shake reads as timing);
    the old score missed the first (0.095 < 0.1) and caught the second by a hair (0.1008)."""
    frames = still if name.startswith("steady") else phone
    jitter = jitter_of(recipe(frames, analyser), analyser)
    assert jitter > settings.quality.stability.jitter_max, (name, jitter)


@pytest.mark.parametrize("face", ["sample", pytest.param("second face", marks=pytest.mark.slow)])
def test_a_turning_head_scores_the_same_wherever_it_sits(settings, analyser, tmp_path, face):
    """The issue's case: a head turning ±20° while it speaks (the personal avatars' recording recipe)
    was refused for jitter once it sat off-centre and smaller, as a scene lays out its presenter
    (the old score divided positions by each frame's interocular distance, so that distance's noise
    grew with the head's distance from the corner: 0.046 centred, 0.15 here). Through the gate's
    own pass: not jitter, and the same score in both layouts. Measured: sample 0.0040 (centred
    0.0041), the second face with its light drift 0.0059 (0.0060)."""
    photo = {"photo": second_face(provisioned_models()), "light_drift": 0.1} if face == "second face" else {}
    recording = make_recording(settings, tmp_path, size=360, text="Papa saw the big cheese on a boat.", lead_s=0.5,
                               head_yaw_deg=20.0, **photo)  # fmt: skip
    frames = np.stack(list(read_frames(recording.path, 360, 360)))
    laid_out = tmp_path / "scene.mp4"
    with VideoWriter(laid_out, 640, 360, EncodeOptions(fps=25, crf=16), audio=tmp_path / "speech.wav") as writer:
        for frame in frames:
            writer.write(off_centre(frame))
    report = evaluate_video(laid_out, analyser, settings.quality, measure_lipsync=False)
    jitter = report.stability.landmark_jitter
    assert jitter < 0.8 * settings.quality.stability.jitter_max, jitter
    assert not any("jitter" in failure for failure in report.failures), report.failures
    centred = jitter_of(frames, analyser)
    assert abs(jitter - centred) < 0.25 * centred + 0.001, (jitter, centred)
