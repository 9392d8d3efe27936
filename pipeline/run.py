"""The stage sequence of one render, shared by the plain Python API and the Prefect flow.

`run_pipeline` runs each stage as a closure through the context's `StageRunner` (pipeline.context:
timed in this process for the library API, a Prefect task in the flow). The order and data flow live
only here.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from config.errors import OutputPathError
from config.files import directory_lock, file_sha256
from driver_synth.driver import DriverArtifact, driver_video_path
from pipeline import chunked, stages
from pipeline.auditing import audited_render
from pipeline.chunk_runners import ChunkRunner
from pipeline.context import FrameHook, RenderContext, StageHook, StageLog, StageRunner, TimedStages
from pipeline.gate import Verdict, fallback_staging_path, quality_gate, rejected_path, staging_path
from pipeline.report import (
    DriverPart,
    RenderReport,
    ScenePart,
    SettingsPart,
    SpeechPart,
    SyncPart,
    VideoPart,
    VoicePart,
    request_parts,
)
from pipeline.request import RenderRequest, ValidatedRequest, output_paths, validate_request
from pipeline.review_store import hold_for_review, review_required
from pipeline.stages import RenderInputs
from quality.errors import QualityGateError
from quality.inline import EncodeMonitor, monitor_setup


@dataclass(frozen=True)
class RenderResult:
    video: Path
    report: Path
    srt: Path | None  # None for a recorded driver clip (no timed words to caption)
    frames: int
    review: str | None = None  # the review id when the video waits for a person's approval (not published)


@dataclass(frozen=True)
class DrivenBy:
    """The motion and sound a render is driven by, and what the report says about them."""

    driver: DriverArtifact
    wav: Path
    speech_part: SpeechPart
    driver_part: DriverPart
    speech: stages.SpeechArtifact | None  # None for a recorded clip (no captions)
    bilabial_spans: list[tuple[float, float]] | None


def stage_names(validated: ValidatedRequest) -> list[str]:
    """The stages this request runs, in order (for progress displays)."""
    if validated.request.driver_video is not None:
        return ["audio", "driver", "avatar", "render", "quality", "package"]
    return ["speech", "visemes", "driver", "avatar", "render", "quality", "package"]


def _synthetic_driver(context: RenderContext) -> DrivenBy:
    """Text → speech → visemes → motion track."""
    validated, settings, log = context.validated, context.settings, context.log
    context.on_stage("speech")
    speech = context.run("speech", lambda: stages.speech_stage(validated, settings))
    log.cache["speech"] = speech.cache_hit
    context.on_stage("visemes")
    visemes = context.run("visemes", lambda: stages.viseme_stage(speech, settings))
    context.on_stage("driver")
    driver = context.run("driver", lambda: stages.driver_stage(visemes, speech, settings))
    log.cache["driver"] = driver.cache_hit
    timings = speech.timings()
    return DrivenBy(
        driver=driver,
        wav=speech.wav_path,
        speech_part=SpeechPart(
            key=speech.key,
            duration_s=round(timings.duration, 3),
            wav=str(speech.wav_path),
            audio_sha256=file_sha256(speech.wav_path),
            words=len(timings.words),
            phones=len(timings.phones),
            voice=VoicePart(template=validated.voice.name, **validated.voice_info.as_dict())
            if validated.voice_info
            else None,
            sentences_synthesized=speech.sentences_synthesized,
            sentences_cached=speech.sentences_cached,
        ),
        driver_part=DriverPart(
            source="synthetic",
            key=driver.key,
            video=str(driver_video_path(driver)),
            track=str(driver.track_path),
            track_sha256=file_sha256(driver.track_path),
        ),
        speech=speech,
        bilabial_spans=[tuple(span) for span in visemes.closures],
    )


def _recorded_driver(context: RenderContext) -> DrivenBy:
    """Recorded clip → its audio + motion read from its landmarks."""
    validated, settings, log = context.validated, context.settings, context.log
    context.on_stage("audio")
    audio = context.run("audio", lambda: stages.driver_audio_stage(validated, settings))
    log.cache["audio"] = audio.cache_hit
    context.on_stage("driver")
    driver = context.run("driver", lambda: stages.recorded_driver_stage(validated, settings, context.on_frame))
    log.cache["driver"] = driver.cache_hit
    clip = Path(validated.request.driver_video)
    return DrivenBy(
        driver=driver,
        wav=audio.wav_path,
        speech_part=SpeechPart(
            source="driver video audio" if audio.had_audio else "silence (the driver video has no audio)",
            wav=str(audio.wav_path),
            audio_sha256=file_sha256(audio.wav_path),
        ),
        driver_part=DriverPart(
            source="recorded",
            clip=str(clip),
            clip_sha256=file_sha256(clip),
            key=driver.key,
            track=str(driver.track_path),
            track_sha256=file_sha256(driver.track_path),
        ),
        speech=None,
        bilabial_spans=None,
    )


def build_report(
    context: RenderContext,
    driven: DrivenBy,
    rendered: stages.RenderedVideo,
    verdict: Verdict,
    captions: dict[str, Path],
    sha256: str | None,
    sync: SyncPart,
) -> RenderReport:
    """The render's report. Everything in it is measured beforehand (`sha256`: of the video to be
    published; `sync`: the driver against the audio), so it can be built outside the publish lock."""
    validated, settings, log = context.validated, context.settings, context.log
    request = validated.request
    output = Path(request.output)
    published = verdict.published
    return RenderReport(
        output=str(output) if published else None,
        published=published,
        sha256=sha256 if published else None,
        **request_parts(validated, settings),
        stage_seconds=log.timings,
        cache_hits=log.cache,
        settings=SettingsPart(video=settings.video, motion=settings.motion, post=settings.post),
        user=validated.actor or getpass.getuser(),
        created=dt.datetime.now(dt.UTC).isoformat(),
        frames=rendered.frames,
        processors=rendered.processors,
        providers=rendered.providers,
        process_ms_per_frame=rendered.process_ms_per_frame,
        metadata=rendered.metadata,
        provenance=rendered.provenance,
        speech=driven.speech_part,
        driver=driven.driver_part,
        quality=verdict.quality,
        rejected=str(verdict.rejected) if verdict.rejected else None,
        fallback=verdict.fallback,
        video=VideoPart(
            duration_s=round(rendered.frames / settings.video.fps, 3),
            width=settings.video.width,
            height=settings.video.height,
            fps=settings.video.fps,
        ),
        captions={name: str(path) for name, path in captions.items()},
        driver_audio_sync=sync,
        chunks=rendered.chunks,
        scene=ScenePart.of(settings.scene.name, settings.scene_template),
    )


def report_path(output: Path, published: bool) -> Path:
    """Beside the video it describes: the published one, or `<name>.rejected.report.json`, so a
    report never describes another file."""
    if published:
        return output_paths(output)["report"]
    rejected = rejected_path(Path(output))
    return rejected.with_name(f"{rejected.stem}.report.json")


def published_sha256(output: Path, verdict: Verdict) -> str | None:
    """The hash of the staged video that publishing will rename onto `output` (None: none will be)."""
    staged = [source for source, target in verdict.moves if target == output]
    return file_sha256(staged[0]) if verdict.published and staged and staged[0].is_file() else None


def run_pipeline(context: RenderContext) -> RenderResult:
    """Every stage of one render, each through `context.runner` (timed in process, a task in the
    Prefect flow). `context.chunk_runner` runs a long render's chunks (None: local processes; the
    flow passes the work-pool runner when `chunking.executor` is `pool`)."""
    validated, settings = context.validated, context.settings
    driven = _recorded_driver(context) if validated.request.driver_video is not None else _synthetic_driver(context)
    context.on_stage("avatar")
    analysis = context.run("avatar", lambda: stages.avatar_stage(validated.avatar, settings))
    context.log.cache["avatar_analysis"] = analysis.cache_hit
    inputs = RenderInputs(analysis, driven.driver, driven.wav, driven.speech, driven.bilabial_spans)
    output, staging = context.output, context.staging
    video, setup = settings.video, monitor_setup(validated.avatar, settings, analysis)
    # The gate's monitor watches every frame on its way to the encoder (quality.inline).
    monitor = EncodeMonitor(setup, video.width, video.height, video.fps, settings.quality.analysis_height)
    try:
        context.on_stage("render")
        # Long speech renders in parallel chunks (pipeline.chunked); anything else in one pass.
        job = context.job(inputs, staging, monitor)
        rendered = context.run("render", lambda: chunked.render_stage(job, context.chunk_runner))
        context.on_stage("quality")
        verdict = quality_gate(context, inputs, monitor)
        context.on_stage("package")
        speech, captions = driven.speech, {}
        if speech is not None and verdict.published:
            captions = context.run("captions", lambda: stages.captions_stage(speech, validated, staging))
        # Measured before any lock: hashing a long video and correlating its driver take seconds, and the
        # lock holds every other render's publication to this folder.
        sync = SyncPart(**stages.track_audio_sync(driven.wav, driven.driver))

        if verdict.published and review_required(validated, settings):
            # governance.review: a person approves before anything appears under the requested name

            def build(final: dict[str, Path]) -> RenderReport:
                return build_report(context, driven, rendered, verdict, final, None, sync)  # review hashes its copy

            scores = quality_scores(verdict.quality)
            path, report = hold_for_review(validated, settings, verdict.moves, captions, build, scores)
        else:
            final = {name: output_paths(output)[name] for name in captions}
            report = build_report(context, driven, rendered, verdict, final, published_sha256(output, verdict), sync)
            path = publish(output, verdict, captions, report)
    finally:
        monitor.abort()  # a no-op once judged; stops its thread if the render failed early
        _discard_staged(staging)
    chunked.remove_stale_work(output)  # chunk folders of killed earlier renders of this output (kill -9)
    if verdict.failure is not None:
        raise QualityGateError(verdict.failure, path)
    srt = Path(report.captions["srt"]) if "srt" in report.captions else None
    review = report.review.id if report.review else None
    return RenderResult(video=output, report=path, srt=srt, frames=report.frames, review=review)


def quality_scores(quality) -> dict[str, float]:
    """The headline quality numbers a reviewer sees next to the video."""
    candidates = {
        "lipsync_correlation": quality.lipsync.correlation,
        "lipsync_lag_ms": quality.lipsync.lag_ms,
        "closure_rate": quality.lipsync.closure_rate,
        "identity_max_distance": quality.identity.max_distance,
        "flicker": quality.stability.flicker,
        "landmark_jitter": quality.stability.landmark_jitter,
        "color_drift_delta_e": quality.color.drift_delta_e,
    }
    return {name: round(float(value), 4) for name, value in candidates.items() if value is not None}


def publish(output: Path, verdict: Verdict, captions: dict[str, Path], report: RenderReport) -> Path:
    """Rename the judged video(s) and the staged captions to their final names and write the report,
    as one step under the output folder's lock: the published video, its captions and its report
    always come from the same render (last writer wins as a whole). Only renames and one write
    happen under the lock; the report is built (and the video hashed) before it."""
    final = {name: output_paths(output)[name] for name in captions}
    with directory_lock(output.parent):
        try:
            for source, target in verdict.moves:
                os.replace(source, target)
            for name, source in captions.items():
                os.replace(source, final[name])
        except OSError as exc:  # checked before the render; changed since (a full disk, a chattr)
            reason = exc.strerror or type(exc).__name__
            raise OutputPathError(f"could not publish {output} ({reason}); check the folder and render again") from exc
        return report.save(report_path(output, verdict.published))


def _discard_staged(staging: Path) -> None:
    """Whatever a failed or interrupted render staged (video, fallback video, captions) goes."""
    fallback = fallback_staging_path(staging)
    for candidate in (staging, fallback, *output_paths(staging).values(), *output_paths(fallback).values()):
        candidate.unlink(missing_ok=True)


def render_video(
    request: RenderRequest,
    settings: Settings,
    on_stage: StageHook = lambda n: None,
    on_frame: FrameHook = None,
    user: str | None = None,
) -> RenderResult:
    """Python API: validate, then run every stage in this process (no orchestrator needed); the
    attempt is audited like a CLI render, under `user` (default: the OS user; the API passes its key)."""
    with audited_render(request, settings, user) as attempt:
        attempt.validated = validate_request(request, settings, actor=attempt.user)
        result = render_validated(attempt.validated, settings, on_stage, on_frame)
        attempt.report_path = result.report
    return result


def render_validated(
    validated: ValidatedRequest,
    settings: Settings,
    on_stage: StageHook = lambda n: None,
    on_frame: FrameHook = None,
    chunk_runner: ChunkRunner | None = None,
) -> RenderResult:
    """Every stage of an already validated request in this process, each timed (the caller holds the
    audit): the in-process render that the CLI, the API and batches share, so nothing validates twice."""
    log = StageLog()
    return run_pipeline(render_context(validated, settings, TimedStages(log), log, on_stage, on_frame, chunk_runner))


def render_context(
    validated: ValidatedRequest,
    settings: Settings,
    runner: StageRunner,
    log: StageLog,
    on_stage: StageHook = lambda n: None,
    on_frame: FrameHook = None,
    chunk_runner: ChunkRunner | None = None,
) -> RenderContext:
    """The context of one render: the scene's settings, and a hidden staging file of its own.

    The render is published (renamed onto the output, with its captions and report, under a lock)
    only once the quality gate has passed it: nothing unjudged ever sits under the requested name,
    and two renders to one name never mix."""
    staging = staging_path(Path(validated.request.output), uuid.uuid4().hex[:12])
    scene = settings.for_scene(validated.scene)  # the scene's canvas, for every stage, chunk and worker
    return RenderContext(validated, scene, runner, log, staging, on_stage, on_frame, chunk_runner)
