"""The seam monitor on recorded-like motion (issue 26): fast whole-head motion (sway, roll, nods, a
lean-in, 30→25 fps resampling, motion blur, a handheld camera) is not a tear; a band of the head
shifted against the rest still is, inside that same motion. Clips are the engine's real frames of
the sample avatar at the gate's analysis size (recipes in `recorded_motion`)."""

from __future__ import annotations

import numpy as np
import pytest
from recorded_motion import analysis_frames, handheld, motion_blur, phone_track, resample, seam_scores, tear

from driver_synth.track import MotionTrack
from pipeline.preview import preview_engine, sweep_track

TORN = (range(12, 15), range(36, 39))  # a tear shows where it starts and where it ends


def _talking(fps: int, seconds: float) -> MotionTrack:
    t = np.arange(round(fps * seconds)) / fps
    return MotionTrack.from_channels(fps, {"jaw_open": 0.45 * (1 + np.sin(2 * np.pi * 3.1 * t)) / 2})


@pytest.fixture(scope="module")
def clips(settings):
    """name -> (frames at 25 fps, the sharp frames they were made from)."""
    engine = preview_engine("sample", settings)
    phone30 = analysis_frames(engine, phone_track(30, 2.0))
    dropped = resample(phone30, 30, 25)
    phone = analysis_frames(engine, phone_track(25, 2.0))
    lean = analysis_frames(engine, phone_track(25, 2.0, lean_in=0.3, sway=0.1))
    camera = handheld(analysis_frames(engine, _talking(25, 2.0)), 25)
    return {
        "phone": (phone, phone),
        "phone 30→25 fps": (dropped, dropped),
        "phone 30→25 fps, motion blur": (resample(motion_blur(phone30), 30, 25), dropped),
        "lean-in": (lean, lean),
        "handheld camera": (camera, camera),
        "sweep ±20°": (analysis_frames(engine, sweep_track(25, 2.0)),) * 2,
    }


@pytest.mark.parametrize("name", ["phone 30→25 fps", "phone 30→25 fps, motion blur", "lean-in", "handheld camera",
                                  "sweep ±20°"])  # fmt: skip
def test_fast_whole_head_motion_is_not_a_tear(clips, analyser, settings, name):
    frames, _ = clips[name]
    scores = seam_scores(frames, analyser, 25)
    assert np.nanmax(scores) < settings.quality.seam_max, (name, np.round(scores, 2))


@pytest.mark.parametrize("name", ["phone", "lean-in", "handheld camera"])
def test_a_tear_inside_fast_motion_is_still_caught(clips, analyser, settings, name):
    frames, sharp = clips[name]
    torn = tear(frames, [i for band in TORN for i in band], analyser, sharp)
    scores = seam_scores(torn, analyser, 25)
    for band in TORN:
        onset, end = scores[band.start], scores[band.stop]
        assert max(onset, end) > settings.quality.seam_max, (name, band, np.round(scores, 2))
