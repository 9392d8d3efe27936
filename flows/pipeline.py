"""The stage sequence of one render, shared by the plain Python API and the Prefect flow.

`run_pipeline` receives a `call(stage_name, function, *args)` that executes one stage: a direct
call for the library API, a Prefect task for the flow. The order and data flow live only here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import Settings
from flows import stages
from flows.stages import RenderRequest, StageLog, ValidatedRequest

StageCall = Callable[..., Any]


@dataclass(frozen=True)
class RenderResult:
    video: Path
    report: Path
    srt: Path
    frames: int


def run_pipeline(
    validated: ValidatedRequest,
    settings: Settings,
    call: StageCall,
    log: StageLog,
    on_stage: Callable[[str], None] = lambda name: None,
    on_frame: Callable[[int, int], None] | None = None,
) -> RenderResult:
    on_stage("speech")
    speech = call("speech", stages.speech_stage, validated, settings)
    log.cache["speech"] = speech.cache_hit
    on_stage("visemes")
    visemes = call("visemes", stages.viseme_stage, speech, settings)
    on_stage("driver")
    driver = call("driver", stages.driver_stage, visemes, speech, settings)
    log.cache["driver"] = driver.cache_hit
    on_stage("avatar")
    analysis = call("avatar", stages.avatar_stage, validated.avatar, settings)
    log.cache["avatar_analysis"] = analysis.cache_hit
    on_stage("render")
    details = call("render", stages.render_stage, validated, analysis, driver, speech, settings, on_frame)
    on_stage("package")
    captions = call("captions", stages.captions_stage, speech, validated)
    timings = speech.timings()
    details = {
        **details,
        "speech": {
            "key": speech.key,
            "duration_s": round(timings.duration, 3),
            "wav": str(speech.wav_path),
            "audio_sha256": stages.file_sha256(speech.wav_path),
            "words": len(timings.words),
            "phones": len(timings.phones),
        },
        "driver": {
            "key": driver.key,
            "video": str(driver.track_path.with_suffix(".mp4")),
            "track": str(driver.track_path),
            "track_sha256": stages.file_sha256(driver.track_path),
        },
        "video": {
            "duration_s": round(details["frames"] / settings.video.fps, 3),
            "width": settings.video.width,
            "height": settings.video.height,
            "fps": settings.video.fps,
        },
        "captions": {k: str(v) for k, v in captions.items()},
        "driver_audio_sync": stages.track_audio_sync(speech, driver),
    }
    report = stages.write_report(validated, settings, log, details)
    return RenderResult(
        video=Path(validated.request.output), report=report, srt=captions["srt"], frames=int(details["frames"])
    )


def render_video(
    request: RenderRequest,
    settings: Settings,
    on_stage: Callable[[str], None] = lambda n: None,
    on_frame: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Python API: validate, then run every stage in this process (no orchestrator needed)."""
    validated = stages.validate_request(request, settings)
    log = StageLog()
    return run_pipeline(
        validated, settings, lambda name, func, *args: log.timed(name, func, *args), log, on_stage, on_frame
    )
