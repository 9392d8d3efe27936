"""The stage sequence of one render, shared by the plain Python API and the Prefect flow.

`run_pipeline` receives a `call(stage_name, function, *args)` that executes one stage: a direct
call for the library API, a Prefect task for the flow. The order and data flow live only here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import Settings
from flows import stages
from flows.quality_stage import QualityGateError, evaluate_output, rejected_path
from flows.stages import RenderRequest, StageLog, ValidatedRequest

StageCall = Callable[..., Any]


@dataclass(frozen=True)
class RenderResult:
    video: Path
    report: Path
    srt: Path | None  # None for a recorded driver clip (no timed words to caption)
    frames: int


def stage_names(validated: ValidatedRequest) -> list[str]:
    """The stages this request runs, in order (for progress displays)."""
    if validated.request.driver_video is not None:
        return ["audio", "driver", "avatar", "render", "quality", "package"]
    return ["speech", "visemes", "driver", "avatar", "render", "quality", "package"]


def _synthetic_driver(
    validated: ValidatedRequest, settings: Settings, call: StageCall, log: StageLog, on_stage, on_frame
):
    """Text → speech → visemes → motion track. Returns (driver, wav, details, speech, P/B/M spans)."""
    on_stage("speech")
    speech = call("speech", stages.speech_stage, validated, settings)
    log.cache["speech"] = speech.cache_hit
    on_stage("visemes")
    visemes = call("visemes", stages.viseme_stage, speech, settings)
    on_stage("driver")
    driver = call("driver", stages.driver_stage, visemes, speech, settings)
    log.cache["driver"] = driver.cache_hit
    timings = speech.timings()
    details = {
        "speech": {
            "key": speech.key,
            "duration_s": round(timings.duration, 3),
            "wav": str(speech.wav_path),
            "audio_sha256": stages.file_sha256(speech.wav_path),
            "words": len(timings.words),
            "phones": len(timings.phones),
        },
        "driver": {
            "source": "synthetic",
            "key": driver.key,
            "video": str(driver.track_path.with_suffix(".mp4")),
            "track": str(driver.track_path),
            "track_sha256": stages.file_sha256(driver.track_path),
        },
    }
    return driver, speech.wav_path, details, speech, [tuple(span) for span in visemes.closures]


def _recorded_driver(
    validated: ValidatedRequest, settings: Settings, call: StageCall, log: StageLog, on_stage, on_frame
):
    """Recorded clip → its audio + motion read from its landmarks. Returns (driver, wav, details, None, None)."""
    on_stage("audio")
    audio = call("audio", stages.driver_audio_stage, validated, settings)
    log.cache["audio"] = audio.cache_hit
    on_stage("driver")
    driver = call("driver", stages.recorded_driver_stage, validated, settings, on_frame)
    log.cache["driver"] = driver.cache_hit
    clip = Path(validated.request.driver_video)
    details = {
        "speech": {
            "source": "driver video audio" if audio.had_audio else "silence (the driver video has no audio)",
            "wav": str(audio.wav_path),
            "audio_sha256": stages.file_sha256(audio.wav_path),
        },
        "driver": {
            "source": "recorded",
            "clip": str(clip),
            "clip_sha256": stages.file_sha256(clip),
            "key": driver.key,
            "track": str(driver.track_path),
            "track_sha256": stages.file_sha256(driver.track_path),
        },
    }
    return driver, audio.wav_path, details, None, None


def _judged(call, name: str, staging: Path, output: Path, tag: str, evaluate_args: tuple):
    """Evaluate the staged video; publish it (rename onto `output`) when it passes, otherwise move it
    to `<output>.<tag>.mp4`. Any error while judging also moves it away: never published unjudged."""
    try:
        quality = call(name, evaluate_output, staging, *evaluate_args)
    except BaseException:
        if staging.exists():
            os.replace(staging, rejected_path(output, tag))
        raise
    if quality.passed:
        os.replace(staging, output)
        return quality, None
    target = rejected_path(output, tag)
    os.replace(staging, target)
    return quality, target


def _quality_gate(validated, settings, call, on_stage, on_frame, render_inputs, spans, staging: Path):
    """Judge the staged render; on failure render the configured fallback into the staging path and
    judge that. Returns (report's quality section, failure message or None, published?)."""
    output = Path(validated.request.output)
    avatar = validated.avatar
    quality, rejected = _judged(call, "quality", staging, output, "rejected", (avatar, settings, spans))
    verdict: dict[str, object] = {"quality": quality.as_dict()}
    if rejected is None:
        return verdict, None, True
    verdict["rejected"] = str(rejected)
    failure = f"quality check failed: {'; '.join(quality.failures)}; the video was kept as {rejected}"
    fallback = settings.quality.fallback
    if fallback == "none":
        return verdict, failure, False
    on_stage("fallback")
    call("fallback", stages.render_stage, validated, *render_inputs, settings, on_frame, fallback, staging)
    still = fallback == "still"
    again, rejected_again = _judged(
        call, "fallback-quality", staging, output, "fallback-rejected", (avatar, settings, spans, still)
    )
    verdict["fallback"] = {"kind": fallback, "quality": again.as_dict(), "published": rejected_again is None}
    if rejected_again is None:
        return verdict, failure + f"; published the '{fallback}' fallback at {output}", True
    verdict["fallback"]["rejected"] = str(rejected_again)
    return verdict, failure + f"; the '{fallback}' fallback failed too ({'; '.join(again.failures)})", False


def run_pipeline(
    validated: ValidatedRequest,
    settings: Settings,
    call: StageCall,
    log: StageLog,
    on_stage: Callable[[str], None] = lambda name: None,
    on_frame: Callable[[int, int], None] | None = None,
) -> RenderResult:
    recorded = validated.request.driver_video is not None
    make_driver = _recorded_driver if recorded else _synthetic_driver
    driver, wav, details, speech, spans = make_driver(validated, settings, call, log, on_stage, on_frame)
    on_stage("avatar")
    analysis = call("avatar", stages.avatar_stage, validated.avatar, settings)
    log.cache["avatar_analysis"] = analysis.cache_hit
    # The render goes to a hidden staging file and is published (renamed onto the output) only once
    # the quality gate has passed it: nothing unjudged ever sits under the requested name.
    output = Path(validated.request.output)
    staging = output.with_name(f".{output.stem}.pending{output.suffix}")
    on_stage("render")
    rendered = call(
        "render", stages.render_stage, validated, analysis, driver, wav, settings, on_frame, "normal", staging
    )
    on_stage("quality")
    inputs = (analysis, driver, wav)
    verdict, failure, published = _quality_gate(validated, settings, call, on_stage, on_frame, inputs, spans, staging)
    on_stage("package")
    make_captions = speech is not None and published
    captions = call("captions", stages.captions_stage, speech, validated) if make_captions else {}
    details = {
        **rendered,
        **details,
        **verdict,
        "video": {
            "duration_s": round(rendered["frames"] / settings.video.fps, 3),
            "width": settings.video.width,
            "height": settings.video.height,
            "fps": settings.video.fps,
        },
        "captions": {k: str(v) for k, v in captions.items()},
        "driver_audio_sync": stages.track_audio_sync(wav, driver),
    }
    report = stages.write_report(validated, settings, log, details, published)
    if failure is not None:
        raise QualityGateError(failure, report)
    return RenderResult(video=output, report=report, srt=captions.get("srt"), frames=int(rendered["frames"]))


def render_video(
    request: RenderRequest,
    settings: Settings,
    on_stage: Callable[[str], None] = lambda n: None,
    on_frame: Callable[[int, int], None] | None = None,
    user: str | None = None,
) -> RenderResult:
    """Python API: validate, then run every stage in this process (no orchestrator needed); the
    attempt is audited like a CLI render, under `user` (default: the OS user; the API passes its key)."""
    from flows.auditing import audited_render

    with audited_render(request, settings, user) as attempt:
        attempt.validated = stages.validate_request(request, settings)
        log = StageLog()
        result = run_pipeline(
            attempt.validated, settings, lambda name, func, *args: log.timed(name, func, *args), log, on_stage, on_frame
        )
        attempt.report_path = result.report
    return result
