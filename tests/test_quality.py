"""Quality monitors on generated videos whose truth is known, `dhf evaluate`'s refusals, and the
render's quality gate (rejection, fallback, audit)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_refused, run_dhf

from config import load_settings
from governance.audit import AuditLog
from media.video import EncodeOptions, VideoWriter, probe, read_frames
from quality.evaluate import evaluate_against_avatar, evaluate_video
from vision.identity import IdentityEmbedder, identity_distance
from vision.models import ModelRegistry


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def rewrite(source: Path, target: Path, change) -> Path:
    """Re-encode `source` frame by frame through `change(index, frame)`, keeping its audio."""
    info = probe(source)
    with VideoWriter(target, info.width, info.height, EncodeOptions(fps=round(info.fps)), audio=None) as writer:
        for index, frame in enumerate(read_frames(source)):
            writer.write(change(index, frame.copy()))
    muxed = target.with_name(target.stem + "-av.mp4")
    ffmpeg("-i", str(target), "-i", str(source), "-map", "0:v", "-map", "1:a", "-c", "copy", str(muxed))
    return muxed


@pytest.fixture(scope="module")
def baseline(rendered, analyser, settings):
    return evaluate_against_avatar(rendered.video, None, settings)


def test_the_reported_quality_agrees_with_an_independent_measurement(rendered, independent):
    """Not the report's `passed` (a published render passed by definition): its figures, checked against
    the test-only reference of tests/independent_measure.py, which shares no code with the gate."""
    from independent_measure import EXPECTED_MIN_CORRELATION, sync

    quality = rendered.report["quality"]
    reference = sync(independent)
    assert quality["frames"] == len(independent.faces_found) == probe(rendered.video).frames
    assert reference.correlation >= EXPECTED_MIN_CORRELATION, reference
    # both in sync, and the same offset within one frame (40 ms at 25 fps: both estimators' step); the
    # gate measures 0 ms here, the reference -40 ms (its dark-pixel mouth opens a frame before the voice)
    assert abs(quality["lipsync"]["lag_ms"] - reference.lag_ms) <= 40, (quality["lipsync"], reference)
    assert quality["lipsync"]["correlation"] >= 0.5 and abs(quality["lipsync"]["lag_ms"]) <= 40
    assert quality["lipsync"]["closure_rate"] >= 0.9 and quality["lipsync"]["bilabial_phones"] > 0
    sampled = quality["identity"]["sampled_frames"]
    assert sampled >= int(rendered.report["video"]["duration_s"] * 0.5) and quality["identity"]["max_distance"] < 0.45
    assert quality["pose"]["gated_frames"] == 0 and quality["stability"]["flicker"] < 0.3
    assert "quality" in rendered.report["stage_seconds"]


def test_a_mouth_delayed_by_160_ms_is_measured(rendered, tmp_path, analyser, settings, baseline):
    """160 ms, not 120: the render's own lag may be one frame (-40 ms), and the gate allows ±80 ms."""
    delayed = tmp_path / "delayed.mp4"
    ffmpeg(
        "-i", str(rendered.video), "-filter_complex", "[0:v]tpad=start_duration=0.16:start_mode=clone[v]",
        "-map", "[v]", "-map", "0:a", "-c:a", "copy", "-t", f"{probe(rendered.video).duration:.3f}", str(delayed),
    )  # fmt: skip
    report = evaluate_video(delayed, analyser, settings.quality)
    assert abs(baseline.lipsync.lag_ms) <= 40, baseline.lipsync
    assert abs(report.lipsync.lag_ms - baseline.lipsync.lag_ms - 160) <= 40, (report.lipsync, baseline.lipsync)
    assert any("offset" in failure for failure in report.failures)


def test_a_swapped_in_face_raises_the_identity_alarm(rendered, tmp_path, analyser, settings):
    from skimage.data import lfw_subset

    embedder = IdentityEmbedder(ModelRegistry(settings.paths.models))
    strangers = []
    for face in lfw_subset()[:12]:  # the first 100 entries of the subset are faces of other people
        grey = cv2.resize((face * 255).astype(np.uint8), (250, 250), interpolation=cv2.INTER_CUBIC)
        strangers.append(
            cv2.cvtColor(cv2.copyMakeBorder(grey, 125, 125, 125, 125, cv2.BORDER_REPLICATE), cv2.COLOR_GRAY2BGR)
        )
    from avatars.library import BUNDLED
    from vision.analysis import read_image

    photo = read_image(BUNDLED / "sample" / "portrait.png", settings.images.max_pixels)
    reference = embedder.embed(photo, analyser.single_face(photo).landmarks)
    distances = [
        identity_distance(embedder.embed(s, f.landmarks), reference)
        for s in strangers
        if (f := analyser.largest_face(s))
    ]
    stranger = strangers[int(np.argmax(distances))]
    assert max(distances) > 0.7
    canvas = cv2.resize(stranger, (1080, 1080))
    swapped = rewrite(rendered.video, tmp_path / "swapped.mp4", lambda i, frame: _paste(frame, canvas))
    report = evaluate_against_avatar(swapped, _sample_avatar(), settings)
    assert report.identity.alarm_ratio > settings.quality.identity.max_alarm_ratio, report.identity
    assert any(failure.startswith("identity") for failure in report.failures)


def _paste(frame: np.ndarray, portrait: np.ndarray) -> np.ndarray:
    frame[:, 420:1500] = portrait
    return frame


def _sample_avatar():
    from avatars.library import AvatarLibrary

    return AvatarLibrary(Path("/nonexistent")).get("sample")


def test_a_turned_head_triggers_the_pose_gate(rendered, tmp_path, analyser, settings):
    def turn(index: int, frame: np.ndarray) -> np.ndarray:
        if 20 <= index < 40:
            rotation = cv2.getRotationMatrix2D((960, 420), 55, 1.0)
            return cv2.warpAffine(frame, rotation, (1920, 1080), borderMode=cv2.BORDER_REPLICATE)
        return frame

    report = evaluate_video(rewrite(rendered.video, tmp_path / "turned.mp4", turn), analyser, settings.quality)
    assert 15 <= report.pose.gated_frames <= 22, report.pose
    assert report.pose.max_abs_roll > 45
    assert any(failure.startswith("pose gate") for failure in report.failures)


def test_injected_brightness_flicker_raises_the_flicker_score(rendered, tmp_path, analyser, settings, baseline):
    def flicker(index: int, frame: np.ndarray) -> np.ndarray:
        return cv2.convertScaleAbs(frame, alpha=1.06 if index % 2 else 0.94)

    report = evaluate_video(rewrite(rendered.video, tmp_path / "flicker.mp4", flicker), analyser, settings.quality)
    assert report.stability.flicker > 10 * max(baseline.stability.flicker, 0.3), report.stability
    assert any(failure.startswith("flicker") for failure in report.failures)


def test_evaluate_cli_passes_our_render_and_refuses_bad_files(rendered, dhf_home, tmp_path):
    ok = run_dhf(["evaluate", str(rendered.video), "--avatar", "sample", "--json"], dhf_home)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["passed"] is True
    noface = tmp_path / "noface.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        "1",
        "-shortest",
        str(noface),
    )
    mute = tmp_path / "mute.mp4"
    ffmpeg("-i", str(rendered.video), "-an", "-c", "copy", str(mute))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 broken")
    for video, message in (
        (noface, "no face found in any frame"),
        (mute, "has no audio track"),
        (corrupt, "is not a readable video"),
    ):
        assert_refused(run_dhf(["evaluate", str(video)], dhf_home), message, tmp_path / "never.mp4")


# Both lip-sync bars: a short sentence is judged by the short-clip one (quality.lipsync.required_correlation).
IMPOSSIBLE_LIPSYNC = "lipsync_min_correlation: 0.99\n  lipsync_min_correlation_short: 0.99"


def render_with_quality(home: Path, output: Path, quality_yaml: str):
    """`dhf render` of a short sentence with extra `quality:` settings (impossible thresholds)."""
    config = output.with_suffix(".yaml")
    config.write_text(f"quality:\n  {quality_yaml}\n")
    args = ["--config", str(config), "render", "Hello there, welcome.", "--avatar", "sample", "--lang", "en"]
    return run_dhf([*args, "-o", str(output), "--quiet"], home)


def test_a_render_that_fails_the_gate_is_not_published(dhf_home, tmp_path):
    output = tmp_path / "gate.mp4"
    result = render_with_quality(dhf_home, output, IMPOSSIBLE_LIPSYNC)
    assert result.returncode == 4, result.stderr
    assert "quality check failed: lip-sync correlation" in result.stderr.strip().splitlines()[-1]
    assert not output.exists() and output.with_name("gate.rejected.mp4").is_file()
    assert not output.with_name("gate.report.json").exists() and not output.with_name("gate.srt").exists()
    report = json.loads(output.with_name("gate.rejected.report.json").read_text())
    assert report["quality"]["passed"] is False and report["sha256"] is None and report["published"] is False
    assert not list(tmp_path.glob(".*pending*"))
    entry = AuditLog(load_settings(home=dhf_home).paths.audit_db).entries()[-1]
    assert entry.record.outcome == "failed" and "quality check failed" in entry.record.detail
    assert entry.record.quality["passed"] == 0.0


def test_the_still_fallback_is_published_when_configured(dhf_home, tmp_path):
    output = tmp_path / "safe.mp4"
    result = render_with_quality(dhf_home, output, f"{IMPOSSIBLE_LIPSYNC}\n  fallback: still")
    assert result.returncode == 4 and "published the 'still' fallback" in result.stderr, result.stderr
    frames = [f for f in read_frames(output)]
    assert len(frames) == probe(output.with_name("safe.rejected.mp4")).frames
    still_change = np.abs(frames[0].astype(int) - frames[len(frames) // 2].astype(int)).mean()
    assert still_change < 0.5, still_change  # a still: only codec noise between frames
    assert probe(output).audio_codec == "aac"
    report = json.loads(output.with_name("safe.report.json").read_text())
    assert report["fallback"]["kind"] == "still" and report["fallback"]["published"] is True


def test_prefect_marks_a_render_that_fails_the_gate_as_failed(dhf_home, tmp_path):
    """In-process on Prefect's test server: the flow run's final state is Failed, with the reason."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.render_flow import render_flow
    from pipeline.request import RenderRequest, validate_request

    settings = load_settings(home=dhf_home)
    settings = settings.with_section("quality", lipsync_min_correlation=0.99, lipsync_min_correlation_short=0.99)
    request = RenderRequest(text="Hello there.", avatar_id="sample", language="en", output=tmp_path / "p.mp4")
    with prefect_test_harness():
        state = render_flow(validate_request(request, settings), settings, return_state=True)
    assert state.is_failed()
    assert "quality check failed" in str(state.message) or "quality check failed" in repr(
        state.result(raise_on_failure=False)
    )
    assert not (tmp_path / "p.mp4").exists() and (tmp_path / "p.rejected.mp4").is_file()


def test_face_alignment_is_an_exact_similarity_fit():
    from vision.identity import TEMPLATE, similarity_transform

    angle, scale, shift = np.radians(17), 2.5, np.array([40.0, -12.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = (TEMPLATE.astype(float) - shift) @ np.linalg.inv(rotation).T  # so that source maps onto TEMPLATE
    matrix = similarity_transform(source, TEMPLATE.astype(float))
    mapped = np.hstack([source, np.ones((3, 1))]) @ matrix.T
    assert np.allclose(mapped, TEMPLATE, atol=1e-6)
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.zeros((3, 2)), TEMPLATE.astype(float))


def test_closure_is_judged_per_bilabial_phone_with_one_frame_of_tolerance():
    from quality.lipsync import closures

    fps = 25.0
    open_mouth = np.full(50, 0.3)
    spans = [(0.4, 0.48), (1.2, 1.28)]  # frames 10-11 and 30-31

    def rate(gaps):
        closed, frames = closures(np.asarray(gaps), spans, fps)
        assert frames == 4
        return sum(closed) / len(closed)

    assert rate(open_mouth) == 0.0  # never closes: fails
    on_time = open_mouth.copy()
    on_time[[10, 31]] = 0.05
    assert rate(on_time) == 1.0
    one_late = open_mouth.copy()
    one_late[[12, 32]] = 0.05  # one frame after each phone: within the lag tolerance
    assert rate(one_late) == 1.0
    three_late = open_mouth.copy()
    three_late[[14, 34]] = 0.05
    assert rate(three_late) == 0.0
    half = open_mouth.copy()
    half[10] = 0.05
    half[30] = 0.2  # 0.2 is not closed (threshold: 35 % of the open mouth)
    assert rate(half) == 0.5


def test_the_gate_judges_what_it_saw_encoded_and_refuses_an_encode_that_differs(rendered, settings, tmp_path):
    """The gate observes frames on their way to the encoder; the encode is then confirmed against
    them (frame count and every keyframe). A video whose frames differ from what was observed (here
    one keyframe painted over after the fact) is refused, not judged by what the monitor saw."""
    from quality.errors import QualityError
    from quality.inline import KEYFRAME_EVERY, EncodeMonitor, monitor_setup

    info = probe(rendered.video)
    wav = tmp_path / "audio.wav"
    ffmpeg("-i", str(rendered.video), "-vn", "-ac", "1", "-ar", "24000", str(wav))
    setup = monitor_setup(None, settings)
    monitors = [EncodeMonitor(setup, info.width, info.height, info.fps, settings.quality.analysis_height) for _ in "ab"]
    options = EncodeOptions(fps=round(info.fps), keyframe_every=KEYFRAME_EVERY)
    faithful, forged = tmp_path / "faithful.mp4", tmp_path / "forged.mp4"
    with (
        VideoWriter(faithful, info.width, info.height, options, wav) as a,
        VideoWriter(forged, info.width, info.height, options, wav) as b,
    ):
        for index, frame in enumerate(read_frames(rendered.video)):
            for monitor in monitors:
                monitor.add(frame)
            a.write(frame)
            if index == KEYFRAME_EVERY:
                frame = frame.copy()
                frame[200:900, 600:1300] = 128  # the face painted over, after the monitor saw it
            b.write(frame)
    report = monitors[0].judge(faithful, settings.quality)
    assert report.frames == info.frames and report.lipsync.correlation > 0.5
    with pytest.raises(QualityError, match=f"frame {KEYFRAME_EVERY} as encoded differs"):
        monitors[1].judge(forged, settings.quality)


def test_a_render_the_gate_cannot_judge_is_rejected_with_exit_code_4(settings, tmp_path):
    """A rendered video in which the gate finds no face at all (real encoder, real face analyser): it is
    kept as `<name>.rejected.mp4` and not published, so it is a quality failure, exit code 4 (was the
    monitor's own error, "no face found", with exit code 2, the code of a bad request)."""
    from types import SimpleNamespace

    from avatars.library import AvatarLibrary
    from config.errors import EXIT_QUALITY_FAILED
    from pipeline.chunked import segment_options
    from pipeline.context import RenderContext, StageLog, TimedStages
    from pipeline.gate import quality_gate, staging_path
    from pipeline.stages import RenderInputs
    from quality.errors import QualityGateError
    from quality.inline import EncodeMonitor, monitor_setup

    small = settings.with_section("video", width=640, height=360)
    output = tmp_path / "faceless.mp4"
    staging = staging_path(output, "0123456789ab")
    monitor = EncodeMonitor(monitor_setup(AvatarLibrary.from_settings(small.paths).get("sample"), small), 640, 360,
                            small.video.fps, small.quality.analysis_height)  # fmt: skip
    grey = np.full((360, 640, 3), 128, np.uint8)
    with VideoWriter(staging, 640, 360, segment_options(small)) as writer:
        for _ in range(30):
            writer.write(grey)
            monitor.add(grey)
    request = SimpleNamespace(request=SimpleNamespace(output=output))
    log = StageLog()
    context = RenderContext(request, small, TimedStages(log), log, staging, print)
    inputs = RenderInputs(analysis=None, driver=None, wav=output, speech=None, bilabial_spans=None)
    with pytest.raises(QualityGateError) as failed:
        quality_gate(context, inputs, monitor)
    assert failed.value.exit_code == EXIT_QUALITY_FAILED == 4
    message = str(failed.value)
    assert message.startswith("quality check failed: no face found") and "faceless.rejected.mp4" in message, message
    assert not staging.exists() and not output.exists()
    assert probe(tmp_path / "faceless.rejected.mp4").frames == 30


# Measured on a real render of "Hello there." (sample, 640x360, 32 frames; read back from the file): the
# inner-lip gap and the speech's RMS envelope. The mouth is in sync (looked at frame by frame); the
# frames the gate saw inline differed by landmark noise and its bare argmax put them at +200 ms
# (0.824 vs 0.812 at 0 ms): the render was refused.
HELLO_GAP = [0.0191, 0.1211, 0.1662, 0.1832, 0.1792, 0.1392, 0.1318, 0.1223, 0.1268, 0.157, 0.1168, 0.1609, 0.1719,
             0.153, 0.1327, 0.1275, 0.121, 0.0755, 0.0685, 0.0809, 0.0772, 0.0779, 0.0773, 0.0744, 0.0727, 0.0722,
             0.0592, 0.05, 0.0405, 0.0478, 0.0441, 0.0458]  # fmt: skip
HELLO_ENVELOPE = [0.02162, 0.11367, 0.16183, 0.15191, 0.13375, 0.18001, 0.20821, 0.22933, 0.18573, 0.17879, 0.13466,
                  0.07787, 0.16192, 0.12232, 0.09534, 0.07631, 0.06289, 0.05101, 0.02051, 0.00374, 0.00092,
                  0.00017, 0.00021, 0.00023, 0.00021, 0.00017, 0.00013, 6e-05, 0.0, 0.0, 0.0, 0.0]  # fmt: skip


def test_a_short_clips_offset_is_not_decided_by_landmark_noise():
    """Lags whose correlations are within LAG_TIE of the best are the same alignment on the data; the
    one nearest zero is reported. With landmark noise of 0.004 of the mouth width (a fraction of a
    pixel) the bare argmax calls this in-sync clip 120-200 ms late on some draws; the tie rule never
    does, and a real 160 ms delay of the same mouth is still found on every draw."""
    from quality.measure import correlation_at_best_lag

    gap, envelope = np.array(HELLO_GAP), np.array(HELLO_ENVELOPE)
    delayed = np.concatenate([np.full(4, gap[0]), gap[:-4]])  # the mouth 4 frames (160 ms) late
    noise = np.random.default_rng(7).normal(0, 0.004, (60, len(gap)))
    argmax_late = sum(abs(correlation_at_best_lag(gap + n, envelope, 25, tie=0.0)["lag_ms"]) > 80 for n in noise)
    assert argmax_late >= 3, "the noise does not reproduce the refusal; the test would prove nothing"
    assert all(abs(correlation_at_best_lag(gap + n, envelope, 25)["lag_ms"]) <= 40 for n in noise)
    assert all(abs(correlation_at_best_lag(delayed + n, envelope, 25)["lag_ms"] - 160) <= 40 for n in noise)


def test_the_offset_of_a_clip_under_two_seconds_is_not_judged(settings):
    """A 32-frame answer: its measured lag is reported but does not refuse the video (its correlation
    still must clear the short-clip threshold); from 50 frames on the offset counts."""
    from quality.lipsync import lipsync_failures
    from quality.scores import LipSyncScores

    late = LipSyncScores(correlation=0.86, lag_ms=200.0)
    assert lipsync_failures(late, settings.quality.lipsync, frames=32) == []
    assert any("offset 200 ms" in f for f in lipsync_failures(late, settings.quality.lipsync, frames=50))
    weak = LipSyncScores(correlation=0.1, lag_ms=200.0)
    assert any("correlation" in f for f in lipsync_failures(weak, settings.quality.lipsync, frames=32))
