"""A recorded face video as driver: motion read back from the session's own rendered talking head
(whose true motion track is known), then transferred onto the avatar again through `dhf render`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_refused, run_dhf

from driver_synth.track import MotionTrack
from media.video import probe, read_audio_mono
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
