"""The stream renderer (streaming/render.py) with real espeak-ng, onnxruntime, ffmpeg and monitors.

Measured, not assumed: the released segments' decoded frames against the published MP4's (a hash per
frame), the frame count against the speech's duration, the playlists as ffprobe reads them, the
captions against the spoken words, landmarks across a part boundary, and what the gate did with a
segment whose frames were torn on purpose (a frame hook, the way a broken processor would tear them).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from avatars.library import AvatarLibrary
from config.loader import load_voices
from fusion.engine import FusionEngine, RenderOptions
from governance.audit import AuditLog
from governance.c2pa_signing import read_manifest
from governance.verify import verify_video
from media.video import probe
from pipeline.request import RenderRequest, validate_request
from pipeline.stages import avatar_look
from streaming.canvas import stream_settings
from streaming.errors import StreamRefusedError
from streaming.parts import StreamMotion, speak_part, split_parts
from streaming.render import run_stream
from streaming.state import read_state
from streaming.warm import WarmPool

VOICE = "en-us-female"  # espeak-ng: fast syntheses (the neural voice is timed in scripts/bench_stream.py)
ONE = "Good morning, how can I help you today?"
TWO = "Hello there, thanks for waiting. Your card is on its way to you."


def _validated(settings, text: str, tmp: Path):
    request = RenderRequest(text=text, avatar_id="sample", language="en", output=tmp / "answer.mp4", voice=VOICE)
    return validate_request(request, settings, actor="test")


@pytest.fixture(scope="module")
def pool(settings):
    warm = WarmPool(settings)
    warm.prepare(["sample"], [VOICE])
    yield warm
    warm.close()


@pytest.fixture(scope="module")
def one(settings, pool, tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream") / "s1"
    seen = []
    state = run_stream(folder, _validated(settings, ONE, folder.parent), settings, pool, seen.append)
    return folder, state, seen


def _decoded(path: Path, width: int, height: int) -> list[np.ndarray]:
    """Every decoded frame exactly once (no frame-rate conversion: a video that starts a few ms after
    its audio would get its first frame doubled, shifting every index)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-an", "-fps_mode", "passthrough", "-f", "rawvideo",
         "-pix_fmt", "bgr24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    size = width * height * 3
    assert len(raw) % size == 0
    return [np.frombuffer(raw[i : i + size], np.uint8).reshape(height, width, 3) for i in range(0, len(raw), size)]


def _frame_hashes(path: Path, width: int, height: int) -> list[str]:
    return [hashlib.sha256(frame.tobytes()).hexdigest() for frame in _decoded(path, width, height)]


def _released(folder: Path) -> list[tuple[str | None, str]]:
    """(init, segment) of every segment video.m3u8 names, in order."""
    named, init = [], None
    for line in (folder / "video.m3u8").read_text().splitlines():
        if line.startswith("#EXT-X-MAP:URI="):
            init = line.split('"')[1]
        elif line and not line.startswith("#"):
            named.append((init, line))
    return named


def test_split_parts_first_clause_then_sentences():
    assert split_parts(TWO, 8) == ["Hello there,", "thanks for waiting.", "Your card is on its way to you."]
    assert split_parts("One two three four five six seven eight nine ten.", 4) == [
        "One two three four",
        "five six seven eight nine ten.",
    ]
    assert split_parts("Yes, one two, three four five six seven eight.", 4) == [
        "Yes, one two,",
        "three four five six seven eight.",
    ]
    assert split_parts("Thanks.", 8) == ["Thanks."]
    assert split_parts('Wait <break time="300ms"/> here.', 8) == ['Wait <break time="300ms"/> here.']
    assert split_parts("你好，我是您的助手。请问有什么可以帮您？", 8) == [
        "你好，",
        "我是您的助手。",
        "请问有什么可以帮您？",
    ]


def test_one_sentence_stream_publishes_the_released_frames(one, settings, tmp_path):
    folder, state, seen = one
    assert state.status == "finished", state.message
    assert seen[0].status == "starting" and any(s.status == "streaming" for s in seen)
    assert state.first_release_s is not None and state.first_release_s > 0
    video = stream_settings(settings).video
    # the released segments, joined by plain byte concatenation per run, decode to the published frames
    joined, named = tmp_path / "released.mp4", _released(folder)
    assert {init for init, _ in named} == {"enc/run0_init.mp4"}  # one encoder run
    with joined.open("wb") as out:
        out.write((folder / named[0][0]).read_bytes())
        for _, segment in named:
            out.write((folder / segment).read_bytes())
    mp4 = Path(state.outputs["mp4"])
    released = _frame_hashes(joined, video.width, video.height)
    published = _frame_hashes(mp4, video.width, video.height)
    assert released == published and len(published) == state.total_frames
    # frame count = the speech's duration x fps (each part padded to whole frames)
    with wave.open(str(folder / "enc" / "answer.wav")) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert len(published) == round(seconds * video.fps)
    assert abs(probe(mp4).duration - seconds) < 0.1
    # the playlist is a complete VOD that ffprobe plays to the same frame count
    text = (folder / "video.m3u8").read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    counted = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "csv=p=0", str(folder / "video.m3u8")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert {int(n) for n in counted.stdout.split()} == {len(published)}  # per program of the playlist
    # captions cover every spoken word
    captions = (folder / "captions.vtt").read_text()
    for word in ONE.replace(",", "").replace("?", "").split():
        assert word in captions
    # the init segment a viewer receives is signed with the stream's content id (the fragments cannot be)
    init = read_manifest(folder / named[0][0], settings)
    assert init.status == "valid" and init.generation["content_id"] == state.content_id
    assert init.generation["stream_init"]["binding"] and "audio_sha256" not in init.generation
    # the published answer carries every mark and its report the stream's figures
    assert verify_video(mp4, settings).passed
    report = json.loads(Path(state.outputs["report"]).read_text())
    assert report["stream"]["segments"] == state.released_segments and report["stream"]["mode"] == "normal"
    assert report["frames"] == len(published)


def test_stream_start_and_end_are_audited(one, settings):
    folder, state, _ = one
    entries = AuditLog.from_settings(settings).entries()
    start = [e for e in entries if e.record.action == "stream" and e.record.extra.get("stream_id") == folder.name]
    end = [e for e in entries if e.record.action == "render" and e.record.extra.get("content_id") == state.content_id]
    assert len(start) == 1 and start[0].record.extra["content_id"] == state.content_id
    assert len(end) == 1 and end[0].record.outcome == "success"
    assert end[0].record.extra["stream"]["outcome"] == "finished"
    assert end[0].record.extra["stream"]["segments"] == state.released_segments


def test_no_jump_at_a_part_boundary(settings, pool, tmp_path, analyser):
    folder = tmp_path / "s2"
    state = run_stream(folder, _validated(settings, TWO, tmp_path), settings, pool)
    assert state.status == "finished", state.message
    report = json.loads(Path(state.outputs["report"]).read_text())
    assert report["stream"]["parts"] == 3
    track = np.load(folder / "enc" / "answer.track.npz")
    video = stream_settings(settings).video
    frames = _decoded(Path(state.outputs["mp4"]), video.width, video.height)
    boundaries = report["stream"]["part_starts"][1:]
    for boundary in boundaries:  # landmarks of the frames around it: the step across it is like its neighbours'
        face, points = None, []
        for frame in frames[boundary - 5 : boundary + 5]:
            face = analyser.track(frame, face)
            points.append(face.landmarks[:, :2])
        steps = [float(np.linalg.norm(a - b, axis=1).mean()) for a, b in itertools.pairwise(points)]
        across, others = steps[4], steps[:4] + steps[5:]
        assert across <= max(2.0 * max(others), 0.5), (boundary, across, others)
    for name in ("head_yaw", "head_pitch", "head_roll", "blink", "brow"):
        values = track[name]
        inside = float(np.percentile(np.abs(np.diff(values)), 99))
        for boundary in boundaries:
            assert abs(values[boundary] - values[boundary - 1]) <= max(2 * inside, 1e-3), name


def test_a_segment_failing_the_gate_is_never_released(settings, pool, tmp_path):
    torn = set(range(26, 36))

    def tear(index: int, mode: str, frame: np.ndarray) -> np.ndarray:
        if mode != "normal" or index not in torn:
            return frame
        out = frame.copy()
        height = out.shape[0]
        out[height // 4 : height // 2] = np.roll(out[height // 4 : height // 2], 60, axis=1)  # a sheared head
        return out

    folder = tmp_path / "s3"
    state = run_stream(folder, _validated(settings, ONE, tmp_path), settings, pool, frame_hook=tear)
    assert state.status == "fallback" and state.mode == "reduced_motion"
    assert "failed the quality gate" in state.message and "seam" in state.message
    failed = state.failure
    start, stop = failed["frames"]
    assert start <= 26 < stop and failed["mode"] == "normal"
    named = [segment for _, segment in _released(folder)]
    assert f"enc/{failed['segment']}" not in named  # never in a playlist, so never served
    run0 = [s for s in named if s.startswith("enc/run0_")]
    assert len(run0) * 12 <= start  # every released normal segment ends before the torn frames
    assert (folder / "video.m3u8").read_text().count("#EXT-X-DISCONTINUITY\n") == 1
    assert verify_video(Path(state.outputs["mp4"]), settings).passed
    entry = [
        e for e in AuditLog.from_settings(settings).entries() if e.record.extra.get("content_id") == state.content_id
    ][-1]
    assert entry.record.extra["stream"]["outcome"] == "fallback"
    assert entry.record.extra["stream"]["failure"]["segment"] == failed["segment"]
    assert read_state(folder).status == "fallback"


def test_review_required_cannot_stream(settings, pool, tmp_path):
    strict = settings.with_section("governance", review="required")
    folder = tmp_path / "s4"
    with pytest.raises(StreamRefusedError, match="review"):
        run_stream(folder, _validated(settings, ONE, tmp_path), strict, pool)
    assert not folder.exists()


@pytest.mark.slow  # ~15 s on the shared 2 cores (a fresh engine build); the default suite verifies warm streams' marks
def test_a_warm_engine_renders_like_a_fresh_one(settings, pool):
    """The pool hands one engine to stream after stream with a new watermark payload: its frames and its
    still must be the ones a freshly built engine makes (no state of the previous stream left)."""
    canvas = stream_settings(settings)
    voice = load_voices(canvas)[0][VOICE]
    avatar = AvatarLibrary.from_settings(canvas.paths).get("sample")
    first = speak_part(0, "Hello there, thanks for waiting.", voice, canvas, 0, StreamMotion(canvas, "a"))
    second = speak_part(0, "Your card is on its way.", voice, canvas, 0, StreamMotion(canvas, "b"))
    built = pool.engines_built
    with pool.engine(avatar, canvas, "normal", 111) as engine:
        for _ in engine.frames(first.track):
            pass
    with pool.engine(avatar, canvas, "normal", 222) as engine:
        reused = [frame.copy() for frame in engine.frames(second.track)]
        still = engine.still.copy()
    assert pool.engines_built == built  # both streams took the warm engine
    analysis = pool.avatar(avatar, canvas).analysis
    with FusionEngine.for_avatar(avatar_look(avatar, analysis), canvas, RenderOptions(222)) as fresh:
        made = [frame.copy() for frame in fresh.frames(second.track)]
        assert np.array_equal(still, fresh.still)
    assert len(made) == len(reused) and all(np.array_equal(a, b) for a, b in zip(made, reused, strict=True))
