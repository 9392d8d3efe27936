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
from flows.quality_stage import QualityGateError, evaluate_output, reject
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


def _quality_gate(validated, settings, call, on_stage, on_frame, render_inputs, spans) -> tuple[dict, str | None]:
    """Evaluate the output; on failure keep it as .rejected.mp4 and render the configured fallback.
    Returns the report's quality section and the failure message (None when the render passed)."""
    output = Path(validated.request.output)
    quality = call("quality", evaluate_output, output, validated.avatar, settings, spans)
    verdict: dict[str, object] = {"quality": quality.as_dict()}
    if quality.passed:
        return verdict, None
    verdict["rejected"] = str(reject(output))
    failure = f"quality check failed: {'; '.join(quality.failures)}; the video was kept as {verdict['rejected']}"
    fallback = settings.quality.fallback
    if fallback == "none":
        return verdict, failure
    on_stage("fallback")
    call("fallback", stages.render_stage, validated, *render_inputs, settings, on_frame, fallback)
    again = call("fallback-quality", evaluate_output, output, validated.avatar, settings, spans, fallback == "still")
    verdict["fallback"] = {"kind": fallback, "quality": again.as_dict(), "published": again.passed}
    if again.passed:
        return verdict, failure + f"; published the '{fallback}' fallback at {output}"
    verdict["fallback"]["rejected"] = str(reject(output, "fallback-rejected"))
    return verdict, failure + f"; the '{fallback}' fallback failed too ({'; '.join(again.failures)})"


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
    on_stage("render")
    rendered = call("render", stages.render_stage, validated, analysis, driver, wav, settings, on_frame)
    on_stage("quality")
    output = Path(validated.request.output)
    verdict, failure = _quality_gate(validated, settings, call, on_stage, on_frame, (analysis, driver, wav), spans)
    on_stage("package")
    captions = call("captions", stages.captions_stage, speech, validated) if speech is not None else {}
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
    report = stages.write_report(validated, settings, log, details)
    if failure is not None:
        raise QualityGateError(failure, report)
    return RenderResult(video=output, report=report, srt=captions.get("srt"), frames=int(rendered["frames"]))


def render_video(
    request: RenderRequest,
    settings: Settings,
    on_stage: Callable[[str], None] = lambda n: None,
    on_frame: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Python API: validate, then run every stage in this process (no orchestrator needed); the
    attempt is audited like a CLI render."""
    from flows.auditing import audited_render

    with audited_render(request, settings) as attempt:
        attempt.validated = stages.validate_request(request, settings)
        log = StageLog()
        result = run_pipeline(
            attempt.validated, settings, lambda name, func, *args: log.timed(name, func, *args), log, on_stage, on_frame
        )
        attempt.report_path = result.report
    return result
