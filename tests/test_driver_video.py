"""A recorded face video as driver: motion read back from the session's own rendered talking head
(whose true motion track is known), then transferred onto the avatar again through `dhf render`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_refused, run_dhf

from devtools.preview import preview_engine
from driver_synth.driver_video import read_driver_features
from driver_synth.track import MotionTrack
from media.video import EncodeOptions, VideoWriter, probe, read_audio_mono
from quality.measure import correlation_at_best_lag, measure_video, rms_envelope


@pytest.fixture(scope="module")
def reenacted(rendered, dhf_home, tmp_path_factory):
    """`dhf render --driver-video <the session's render>`: the avatar performs a recorded clip."""
    output = tmp_path_factory.mktemp("recorded") / "copy.mp4"
    result = run_dhf(
        ["render", "--driver-video", str(rendered.video), "--avatar", "sample", "--lang", "en", "-o", str(output)],
        dhf_home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(output.with_name("copy.report.json").read_text())
    return output, report


def test_motion_read_from_video_matches_the_true_track(rendered, reenacted):
    _, report = reenacted
    truth = MotionTrack.load(Path(rendered.report["driver"]["track"]))
    read = MotionTrack.load(Path(report["driver"]["track"]))
    assert read.source == "recorded" and report["driver"]["source"] == "recorded"
    assert read.frame_count == truth.frame_count
    mouth = correlation_at_best_lag(read.mouth_gap(), truth.mouth_gap(), 25)
    assert mouth["correlation"] >= 0.85 and mouth["lag_ms"] == 0, mouth
    # Every blink of the true track is found within one frame, and no blink is invented.
    true_blinks = np.flatnonzero(truth.channels["blink"] > 0.5)
    read_blinks = np.flatnonzero(read.channels["blink"] > 0.5)
    assert len(true_blinks) > 0
    assert all(np.min(np.abs(read_blinks - b)) <= 1 for b in true_blinks), (true_blinks, read_blinks)
    assert all(np.min(np.abs(true_blinks - b)) <= 1 for b in read_blinks), (true_blinks, read_blinks)
    yaw = correlation_at_best_lag(read.channels["head_yaw"], truth.channels["head_yaw"], 25)
    assert yaw["correlation"] >= 0.6, yaw


def test_recorded_driver_output_copies_mouth_and_audio(rendered, reenacted, measured, analyser):
    output, report = reenacted
    info = probe(output)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (1920, 1080, "h264", "aac")
    assert info.frames == rendered.report["frames"]
    assert set(report["stage_seconds"]) == {"audio", "driver", "avatar", "render", "quality"}
    assert "captions" not in report["stage_seconds"] and report["captions"] == {}
    # The clip's sound is the output's sound (through an AAC re-encode).
    source_audio = rms_envelope(read_audio_mono(rendered.video), 16000, 25, info.frames)
    output_audio = rms_envelope(read_audio_mono(output), 16000, 25, info.frames)
    assert np.corrcoef(source_audio, output_audio)[0, 1] >= 0.98
    # The avatar's mouth, re-detected on the output, follows the driver clip's mouth.
    copied = measure_video(output, analyser)
    assert copied.faces_found.all()
    transfer = correlation_at_best_lag(copied.lip_gap, measured.lip_gap, 25)
    assert transfer["correlation"] >= 0.8 and abs(transfer["lag_ms"]) <= 40, transfer


def test_driver_clip_without_audio_gets_a_silent_track(rendered, dhf_home, tmp_path):
    clip = tmp_path / "mute.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(rendered.video), "-t", "1.2", "-an", "-c:v", "libx264", str(clip)],
        check=True,
    )
    output = tmp_path / "out.mp4"
    result = run_dhf(
        ["render", "--driver-video", str(clip), "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet"],
        dhf_home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    info = probe(output)
    assert info.audio_codec == "aac" and info.frames == 30
    assert np.abs(read_audio_mono(output)).max() < 1e-3
    report = json.loads(output.with_name("out.report.json").read_text())
    assert report["speech"]["source"].startswith("silence")


def test_driver_clip_without_a_face_is_refused(dhf_home, tmp_path):
    clip = tmp_path / "noface.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "1", str(clip)],
        check=True,
    )
    output = tmp_path / "out.mp4"
    args = ["render", "--driver-video", str(clip), "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet"]
    assert_refused(run_dhf(args, dhf_home), "no face in 100% of the frames", output)


@pytest.mark.parametrize(
    ("clip", "config", "pattern"),
    [
        ("missing.mp4", None, "driver video not found"),
        ("garbage.mp4", None, "is not a readable video"),
        ("render", "driver_video:\n  max_seconds: 1\n", "over the 1 s limit"),
    ],
)
def test_bad_driver_clips_fail_fast(clip, config, pattern, rendered, dhf_home, tmp_path):
    path = rendered.video if clip == "render" else tmp_path / clip
    if clip == "garbage.mp4":
        path.write_bytes(b"not a video at all")
    args = ["render", "--driver-video", str(path), "--avatar", "sample", "--lang", "en"]
    if config:
        (tmp_path / "limits.yaml").write_text(config)
        args = ["--config", str(tmp_path / "limits.yaml"), *args]
    output = tmp_path / "out.mp4"
    assert_refused(run_dhf([*args, "-o", str(output)], dhf_home), pattern, output)


def _panning_clip(path: Path, settings, fps: int = 30, seconds: float = 2.0, cut_at: float | None = None) -> Path:
    """The sample's still at 640x360 filmed by a camera panning ±60 px at 0.8 Hz (a smooth motion
    whose true steps are known); from `cut_at` on, a cut to a 1.6x close-up."""
    still = cv2.resize(preview_engine("sample", settings).still, None, fx=0.5, fy=0.5)
    height, width = still.shape[:2]
    with VideoWriter(path, 640, 360, EncodeOptions(fps=fps)) as out:
        for index in range(round(fps * seconds)):
            t = index / fps
            zoom = 1.6 if cut_at is not None and t >= cut_at else 1.0
            matrix = np.float32([[zoom, 0, 0], [0, zoom, 0]])
            matrix[:, 2] = [320, 180] - zoom * np.array([width / 2, height / 2])
            matrix[0, 2] += PAN_PX * np.sin(2 * np.pi * PAN_HZ * t)
            out.write(cv2.warpAffine(still, matrix, (640, 360), borderMode=cv2.BORDER_REFLECT))
    return path


PAN_PX, PAN_HZ = 60.0, 0.8


def test_resampling_30_fps_to_25_keeps_the_head_motion_smooth(settings, analyser, tmp_path):
    """From 30 to 25 fps the old reader dropped one frame in six: the head's step doubled there
    (max second difference of its centre 15.4 px on this clip, 1.3 true steps); read at the
    clip's own rate and interpolated by timestamp it is 5.7 px (landmark noise)."""
    clip = _panning_clip(tmp_path / "pan.mp4", settings)
    features = read_driver_features(clip, analyser, 25, settings.driver_video)
    assert len(features) == 50 and all(f is not None for f in features)
    centre = np.array([f.centre_x for f in features])
    true_step = PAN_PX * 2 * np.pi * PAN_HZ / 25  # the pan's largest step per output frame, px
    assert np.abs(np.diff(centre)).max() < 1.4 * true_step, np.round(np.diff(centre), 1)  # no doubled step
    assert np.abs(np.diff(centre, 2)).max() < 0.75 * true_step, np.round(np.diff(centre, 2), 1)


def test_a_cut_in_the_driver_clip_is_refused_before_rendering(dhf_home, settings, tmp_path):
    clip = _panning_clip(tmp_path / "cut.mp4", settings, fps=25, seconds=2.0, cut_at=1.2)
    output = tmp_path / "out.mp4"
    args = ["render", "--driver-video", str(clip), "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet"]
    result = run_dhf(args, dhf_home)
    assert_refused(result, "jumps at 1.20 s (frame 30)", output)
    assert "one continuous take" in result.stderr
