"""Every render attempt goes into the audit log: successes, refusals and failures alike.

`audited_render` wraps a render (CLI or Python API). The caller fills in what it learns as it goes
(the validated request, then the report); whatever happens, one entry is appended, and the
exception, if any, is re-raised unchanged. A refusal is an error before validation finished (bad
text, unknown avatar, license); a failure is anything after it (a crash, disk full, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config import Settings
from config.files import content_hash, file_sha256
from governance.audit import AuditLog, AuditRecord
from pipeline.report import RenderReport
from pipeline.request import RenderRequest, ValidatedRequest, model_hashes, output_paths


@dataclass
class RenderAttempt:
    """What the render has established so far; filled in by the caller inside `audited_render`."""

    request: RenderRequest
    user: str = ""  # the authenticated actor the entry is recorded under (OS user or api-key:<id>)
    validated: ValidatedRequest | None = None
    report_path: Path | None = None
    logged: bool = False  # its entry is written already (`log_rendered`: a render that waits for its review)


def inputs_hash(request: RenderRequest, settings: Settings) -> str:
    """Hash of everything that decides the output apart from the avatar: text, language, voice, use,
    driver clip and the settings."""
    clip = request.driver_video
    scene = {"scene": request.scene} if request.scene is not None else {}  # absent: hashes as before scenes
    return content_hash(
        {
            **scene,
            "text": request.text,
            "language": request.language,
            "voice": request.voice,
            "channel": request.channel,
            "purpose": request.purpose,
            "driver_video": file_sha256(Path(clip)) if clip and Path(clip).is_file() else str(clip or ""),
            "settings": settings.hashable(),
        },
        64,
    )


def _record(attempt: RenderAttempt, settings: Settings, outcome: str, detail: str, user: str) -> AuditRecord:
    request, validated = attempt.request, attempt.validated
    fields: dict[str, Any] = {
        "action": "render",
        "outcome": outcome,
        "user": user,
        "detail": detail,
        "avatar_id": request.avatar_id,
        "inputs_sha256": inputs_hash(request, settings),
        "extra": {"language": request.language, "channel": request.channel, "purpose": request.purpose},
    }
    if validated is not None:
        fields["avatar_version"] = validated.avatar.version
        fields["license_id"] = validated.license.license_id
        fields["license_sha256"] = file_sha256(validated.license.path)
        fields["models"] = model_hashes(settings, voice_models=validated.voice_models)
        if validated.voice_info is not None:  # which voice spoke: engine, model sha256, licence, style
            fields["extra"]["voice"] = {"template": validated.voice.name, **validated.voice_info.as_dict()}
    fields["output"] = str(output_paths(request.output)["video"])
    report = _read_report(attempt.report_path)
    if report is not None:  # a finished render, published or rejected by quality
        fields["output_sha256"] = report.sha256
        fields["quality"] = quality_scores(report)
        fields["extra"]["report"] = str(attempt.report_path)
        fields["extra"]["content_id"] = report.provenance.content_id  # what `dhf verify` matches a watermark to
        fields["extra"]["frames"] = report.frames
        if report.providers:  # the neural processors' models, and what each ran on
            fields["extra"]["providers"] = report.providers
        if report.rejected:
            fields["extra"]["rejected"] = report.rejected
        if report.review:  # held for a person's approval: not published yet. Approval may publish only what
            # this entry says (pipeline.review): the video's hash (output_sha256), its captions' and the deadline.
            fields["extra"]["review"] = report.review.id
            fields["extra"]["review_deadline"] = report.review.deadline
            fields["extra"]["held_sha256"] = {
                name: file_sha256(Path(path)) for name, path in report.captions.items() if Path(path).is_file()
            }
        if report.fallback:
            fields["extra"]["fallback"] = {"kind": report.fallback.kind, "published": report.fallback.published}
    return AuditRecord(**fields)


def _read_report(path: Path | None) -> RenderReport | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        return RenderReport.load(path)
    except (OSError, ValidationError):
        return None  # the entry still records the attempt; the detail says why it failed


def quality_scores(report: RenderReport) -> dict[str, float]:
    """The headline numbers of a render's quality section (for the audit log)."""
    quality = report.quality
    candidates = {
        "driver_audio_sync": report.driver_audio_sync.correlation,
        "lipsync_correlation": quality.lipsync.correlation,
        "lipsync_lag_ms": quality.lipsync.lag_ms,
        "closure_rate": quality.lipsync.closure_rate,
        "identity_max_distance": quality.identity.max_distance,
        "gated_frames": quality.pose.gated_frames,
        "flicker": quality.stability.flicker,
        "landmark_jitter": quality.stability.landmark_jitter,
        "color_drift_delta_e": quality.color.drift_delta_e,
        "passed": 1.0 if quality.passed else 0.0,
    }
    return {name: float(value) for name, value in candidates.items() if value is not None}


@contextlib.contextmanager
def audited_render(request: RenderRequest, settings: Settings, user: str | None = None) -> Iterator[RenderAttempt]:
    who = user or getpass.getuser()
    attempt = RenderAttempt(request, who)
    log = AuditLog.from_settings(settings)
    try:
        yield attempt
    except BaseException as exc:
        if attempt.logged:  # rendered and logged; what failed was the wait for its review (Ctrl-C)
            raise
        attempt.report_path = getattr(exc, "report_path", None) or attempt.report_path
        outcome = "refused" if attempt.validated is None and isinstance(exc, Exception) else "failed"
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM raised as one by the CLI ("SIGTERM")
            detail = f"interrupted ({exc})" if str(exc) else "interrupted"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        log.append(_record(attempt, settings, outcome, detail.splitlines()[0][:500], who))
        raise
    if not attempt.logged:
        log.append(_record(attempt, settings, "success", "", who))


def log_rendered(attempt: RenderAttempt, settings: Settings) -> None:
    """Write the render's success entry now, inside `audited_render`: a `dhf render --wait-review`
    waits there for the review, and the review is decided from this entry (its deadline and the
    held files' hashes), so a decision made while it waits needs the entry to exist already."""
    if not attempt.logged:
        AuditLog.from_settings(settings).append(_record(attempt, settings, "success", "", attempt.user))
        attempt.logged = True


def audit_refusal(request: RenderRequest, settings: Settings, user: str, error: Exception) -> None:
    """Record a request refused before any render started (the API checks requests up front)."""
    attempt = RenderAttempt(request, user)
    detail = f"{type(error).__name__}: {error}".splitlines()[0][:500]
    AuditLog.from_settings(settings).append(_record(attempt, settings, "refused", detail, user))
