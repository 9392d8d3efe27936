"""Every render attempt goes into the audit log: successes, refusals and failures alike.

`audited_render` wraps a render (CLI or Python API). The caller fills in what it learns as it goes
(the validated request, then the report); whatever happens, one entry is appended, and the
exception, if any, is re-raised unchanged. A refusal is an error before validation finished (bad
text, unknown avatar, license); a failure is anything after it (a crash, disk full, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import getpass
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from config import Settings
from config.files import content_hash, file_sha256
from flows.audit import AuditLog, AuditRecord
from flows.stages import RenderRequest, ValidatedRequest, output_paths, used_model_hashes


@dataclass
class RenderAttempt:
    """What the render has established so far; filled in by the caller inside `audited_render`."""

    request: RenderRequest
    validated: ValidatedRequest | None = None
    report_path: Path | None = None


def inputs_hash(request: RenderRequest, settings: Settings) -> str:
    """Hash of everything that decides the output apart from the avatar: text, language, voice, use,
    driver clip and the settings."""
    clip = request.driver_video
    return content_hash(
        {
            "text": request.text,
            "language": request.language,
            "voice": request.voice,
            "channel": request.channel,
            "purpose": request.purpose,
            "driver_video": file_sha256(Path(clip)) if clip and Path(clip).is_file() else str(clip or ""),
            "settings": {k: v for k, v in asdict(settings).items() if k != "paths"},
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
        fields["models"] = used_model_hashes(settings)
    report = attempt.report_path
    fields["output"] = str(output_paths(request.output)["video"])
    if report is not None and report.is_file():  # a finished render, published or rejected by quality
        data = json.loads(report.read_text(encoding="utf-8"))
        fields["output_sha256"] = data.get("sha256")
        fields["quality"] = quality_scores(data)
        fields["extra"]["report"] = str(report)
        content_id = (data.get("provenance") or {}).get("content_id")
        if content_id:
            fields["extra"]["content_id"] = content_id  # what `dhf verify` matches a watermark against
        fields["extra"]["frames"] = data.get("frames")
        if data.get("rejected"):
            fields["extra"]["rejected"] = data["rejected"]
        if data.get("fallback"):
            fields["extra"]["fallback"] = {k: data["fallback"][k] for k in ("kind", "published")}
    return AuditRecord(**fields)


def quality_scores(report: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of a render's quality section (for the audit log)."""
    scores = {"driver_audio_sync": float(report["driver_audio_sync"]["correlation"])}
    quality = report.get("quality") or {}
    picks = {
        "lipsync_correlation": ("lipsync", "correlation"),
        "lipsync_lag_ms": ("lipsync", "lag_ms"),
        "closure_rate": ("lipsync", "closure_rate"),
        "identity_max_distance": ("identity", "max_distance"),
        "gated_frames": ("pose", "gated_frames"),
        "flicker": ("stability", "flicker"),
        "landmark_jitter": ("stability", "landmark_jitter"),
        "color_drift_delta_e": ("color", "drift_delta_e"),
    }
    for name, (section, key) in picks.items():
        value = (quality.get(section) or {}).get(key)
        if isinstance(value, int | float):
            scores[name] = float(value)
    if quality:
        scores["passed"] = 1.0 if quality.get("passed") else 0.0
    return scores


@contextlib.contextmanager
def audited_render(request: RenderRequest, settings: Settings, user: str | None = None) -> Iterator[RenderAttempt]:
    attempt = RenderAttempt(request)
    log = AuditLog(settings.paths.audit_db)
    who = user or getpass.getuser()
    try:
        yield attempt
    except BaseException as exc:
        attempt.report_path = getattr(exc, "report_path", None) or attempt.report_path
        outcome = "refused" if attempt.validated is None and isinstance(exc, Exception) else "failed"
        detail = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        log.append(_record(attempt, settings, outcome, detail.splitlines()[0][:500], who))
        raise
    log.append(_record(attempt, settings, "success", "", who))


def audit_refusal(request: RenderRequest, settings: Settings, user: str, error: Exception) -> None:
    """Record a request refused before any render started (the API checks requests up front)."""
    attempt = RenderAttempt(request)
    detail = f"{type(error).__name__}: {error}".splitlines()[0][:500]
    AuditLog(settings.paths.audit_db).append(_record(attempt, settings, "refused", detail, user))
