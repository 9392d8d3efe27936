"""The typed render path (pipeline.context, pipeline.run): every stage goes through the context's
`StageRunner`, and the publish lock only renames and writes (the video's hash and the driver/audio
sync are measured before it). One real render of a short text at 640x360."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

import pipeline.run
from pipeline import stages
from pipeline.context import StageLog
from pipeline.report import RenderReport
from pipeline.request import RenderRequest, validate_request

T = TypeVar("T")


def request(output: Path) -> RenderRequest:
    return RenderRequest(text="Hello there, welcome to our bank.", avatar_id="sample", language="en", output=output)


class RecordingStages:
    """A StageRunner that runs each stage here and remembers its name, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def run(self, name: str, stage: Callable[[], T]) -> T:
        self.names.append(name)
        return stage()


def test_every_stage_runs_through_the_runner_and_the_lock_only_renames(settings, tmp_path, monkeypatch):
    small = settings.with_section("video", width=640, height=360)
    output = tmp_path / "typed.mp4"
    validated = validate_request(request(output), small)
    locked = [False]
    measured_in_lock: list[str] = []
    real_lock, real_hash, real_sync = pipeline.run.directory_lock, pipeline.run.file_sha256, stages.track_audio_sync

    @contextlib.contextmanager
    def watched_lock(folder: Path):
        with real_lock(folder):
            locked[0] = True
            try:
                yield
            finally:
                locked[0] = False

    def hash_watched(path: Path) -> str:
        if locked[0]:
            measured_in_lock.append(f"sha256 {Path(path).name}")
        return real_hash(path)

    def sync_watched(audio, driver):
        if locked[0]:
            measured_in_lock.append("driver_audio_sync")
        return real_sync(audio, driver)

    monkeypatch.setattr(pipeline.run, "directory_lock", watched_lock)
    monkeypatch.setattr(pipeline.run, "file_sha256", hash_watched)
    monkeypatch.setattr(stages, "track_audio_sync", sync_watched)
    runner, log = RecordingStages(), StageLog()
    frames: list[tuple[int, int]] = []
    context = pipeline.run.render_context(validated, small, runner, log, on_frame=lambda *done: frames.append(done))
    result = pipeline.run.run_pipeline(context)

    assert runner.names == ["speech", "visemes", "driver", "avatar", "render", "quality", "captions"]
    assert measured_in_lock == []  # the lock renamed and wrote, nothing else
    report = RenderReport.load(result.report)
    # the published file's own bytes, hashed here after publication
    assert report.sha256 == hashlib.sha256(output.read_bytes()).hexdigest()
    assert report.driver_audio_sync.correlation > 0.3, report.driver_audio_sync
    assert report.frames == result.frames == frames[-1][0] == frames[-1][1] > 0
    assert not list(tmp_path.glob(".*pending*")), list(tmp_path.iterdir())  # no staging file left


def test_a_failing_stage_is_raised_through_the_runner(settings, tmp_path):
    """The runner sees the stage that fails and the error reaches the caller unchanged."""
    output = tmp_path / "failing.mp4"
    validated = validate_request(request(output), settings)

    class Failing(RecordingStages):
        def run(self, name: str, stage: Callable[[], T]) -> T:
            self.names.append(name)
            if name == "visemes":
                raise RuntimeError("visemes refused")
            return stage()

    runner = Failing()
    context = pipeline.run.render_context(validated, settings, runner, StageLog())
    with pytest.raises(RuntimeError, match="visemes refused"):
        pipeline.run.run_pipeline(context)
    assert runner.names == ["speech", "visemes"]
    assert not output.exists()


def test_the_fallback_renders_through_the_chunked_path_with_the_render_s_chunk_runner(settings, tmp_path, monkeypatch):
    """The gate's fallback is rendered like the render itself (a long text in chunks, by the render's
    chunk runner), named "fallback" for the runner, and judged as "fallback-quality"."""
    from types import SimpleNamespace

    import pipeline.chunked
    import pipeline.gate
    from pipeline.context import RenderContext
    from pipeline.gate import fallback_staging_path, quality_gate, staging_path
    from quality.scores import QualityReport

    output = tmp_path / "fallback.mp4"
    staging = staging_path(output, "0123456789ab")
    staging.write_bytes(b"the first render")
    verdicts = iter(
        [
            QualityReport.model_construct(passed=False, failures=["lip-sync 0.20 < 0.40"]),
            QualityReport.model_construct(passed=True, failures=[]),
        ]
    )
    monkeypatch.setattr(pipeline.gate, "judge_encoded", lambda *args: next(verdicts))
    rendered: list[tuple[str, Path, object]] = []

    def render(job, runner):
        rendered.append((job.mode, job.target, runner))
        job.target.write_bytes(b"the fallback")

    monkeypatch.setattr(pipeline.chunked, "render_stage", render)
    chunks, runner = object(), RecordingStages()
    request = SimpleNamespace(request=SimpleNamespace(output=output))
    fallback = settings.with_section("quality", fallback="reduced_motion")
    context = RenderContext(request, fallback, runner, StageLog(), staging, chunk_runner=chunks)
    inputs = stages.RenderInputs(analysis=None, driver=None, wav=output)
    verdict = quality_gate(context, inputs, SimpleNamespace(fresh=lambda: "its own monitor"))

    assert rendered == [("reduced_motion", fallback_staging_path(staging), chunks)]
    assert runner.names == ["quality", "fallback", "fallback-quality"]
    assert verdict.published and verdict.fallback.kind == "reduced_motion"
    assert verdict.moves == (
        (staging, output.with_name("fallback.rejected.mp4")),
        (fallback_staging_path(staging), output),
    )
