"""`dhf verify video.mp4`: which AI marks a video still carries, each present/absent/invalid.

Checks, in the order a re-published copy tends to lose them:
- c2pa: the signed manifest and its validation state. Any byte changed after signing makes it
  invalid; a re-encode drops it (absent).
- metadata: the MP4 tags `ai_generated`, `content_id` and the `AIGC` implicit label. A re-encode
  often drops them.
- watermark: the content id's first 32 bits hidden in the frames. This mark survives re-encoding,
  resizing and slight cropping. It is checked against the metadata's content id (when present) and
  looked up in the audit log.
- visible_label: the burnt-in "AI生成 / AI-generated" label, searched in sampled frames.

The video passes only when all four are valid. A copy with only the watermark can still be traced
to its audit entry; the report says so. When the video went through human review (governance.review),
`review` says who approved it, from the audit log's `review` entry for its content id. Why the audit
log and not the C2PA manifest: the manifest is signed when the video is encoded, before anyone has
seen it; re-signing after approval would change the file the reviewer approved.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from config import Settings
from fusion.watermark import WatermarkDecoder, payload_of
from governance.audit import AuditLog
from governance.c2pa_signing import TRAINED_ALGORITHMIC_MEDIA, read_manifest
from governance.label_detect import LabelDetector
from media.video import probe, read_frames

ANALYSIS_WIDTH = 960
SAMPLE_FPS = 5.0
LABEL_MIN_SCORE = 0.6
LABEL_MIN_SHARE = 0.8  # of the sampled frames
LABEL_SAMPLES = 8


@dataclass(frozen=True)
class MarkCheck:
    mark: str
    status: str  # valid | absent | invalid
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    video: str
    checks: list[MarkCheck]
    content_id: str | None = None
    audit_entry: int | None = None
    review: str | None = None  # "approved by alice at … (audit entry #n): comment", from the audit log
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.status == "valid" for check in self.checks)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def verify_video(video: Path, settings: Settings) -> VerifyReport:
    info = probe(video)  # MediaError (a one-line user error) for a missing or unreadable file
    metadata_check, content_id = _metadata(info.tags)
    c2pa_check, c2pa_content_id = _c2pa(video, settings)
    width = min(ANALYSIS_WIDTH, info.width)
    height = max(2, round(info.height * width / info.width / 2) * 2)
    decoder = WatermarkDecoder()
    detector = LabelDetector(settings.label, height, width)
    label_scores: list[float] = []
    frames = max(1, round(info.duration * SAMPLE_FPS))
    label_every = max(1, frames // LABEL_SAMPLES)
    for index, frame in enumerate(read_frames(video, width, height, fps=SAMPLE_FPS)):
        decoder.add(frame)
        if index % label_every == 0:
            label_scores.append(detector.score(frame))
    reading = decoder.read()
    expected = content_id or c2pa_content_id
    audit_id, audit_time = _audit_lookup(settings, reading.payload) if reading.found else (None, None)
    if not reading.found:
        watermark = MarkCheck("watermark", "absent", f"no watermark read (sync {reading.sync_agreement}/16)")
    elif expected is not None and reading.payload != payload_of(expected):
        watermark = MarkCheck(
            "watermark", "invalid", f"payload {reading.payload:08x} does not match content id {expected}"
        )
    else:
        where = f"; audit entry #{audit_id} ({audit_time})" if audit_id else "; no audit entry on this machine"
        watermark = MarkCheck(
            "watermark", "valid", f"payload {reading.payload:08x} (signal/noise {reading.snr}){where}"
        )
    label = _label(label_scores)
    return VerifyReport(
        str(video),
        [label, metadata_check, watermark, c2pa_check],
        content_id=expected,
        audit_entry=audit_id,
        review=review_of(settings, expected),
        extra={"watermark_frames": reading.frames, "label_scores": [round(s, 2) for s in label_scores]},
    )


def _label(scores: list[float]) -> MarkCheck:
    if not scores:
        return MarkCheck("visible_label", "absent", "no frames decoded")
    seen = sum(score >= LABEL_MIN_SCORE for score in scores)
    detail = f"found in {seen} of {len(scores)} sampled frames (best match {max(scores):.2f})"
    if seen == 0:
        return MarkCheck("visible_label", "absent", detail)
    return MarkCheck("visible_label", "valid" if seen >= LABEL_MIN_SHARE * len(scores) else "invalid", detail)


def _metadata(tags: dict[str, str]) -> tuple[MarkCheck, str | None]:
    lowered = {key.lower(): value for key, value in tags.items()}
    content_id = lowered.get("content_id")
    aigc_raw = lowered.get("aigc")
    ai_flag = lowered.get("ai_generated") == "true"
    if not (content_id or aigc_raw or ai_flag):
        return MarkCheck("metadata", "absent", "no AI-generation tags"), None
    try:
        aigc = json.loads(aigc_raw) if aigc_raw else {}
    except json.JSONDecodeError:
        aigc = {}
    problems = []
    if not ai_flag:
        problems.append("ai_generated tag missing")
    if aigc.get("Label") != "1":
        problems.append("AIGC implicit label missing or not '1'")
    if not content_id or aigc.get("ProduceID") not in (None, content_id):
        problems.append("content_id missing or different from AIGC ProduceID")
    if problems:
        return MarkCheck("metadata", "invalid", "; ".join(problems)), content_id
    return MarkCheck("metadata", "valid", f"AI-generated, content id {content_id}, by {aigc.get('ContentProducer')}"), (
        content_id
    )


def _c2pa(video: Path, settings: Settings) -> tuple[MarkCheck, str | None]:
    reading = read_manifest(video, settings)
    content_id = reading.generation.get("content_id")
    if reading.status == "absent":
        return MarkCheck("c2pa", "absent", "no C2PA manifest"), None
    signer = f"signed by {reading.signer}"
    if reading.test_signer and "TEST" not in (reading.signer or ""):
        signer += " (TEST certificate)"
    if reading.status != "valid":
        problems = "; ".join(reading.problems) or "unreadable"
        return MarkCheck("c2pa", "invalid", f"{reading.state or 'unreadable'}: {problems}"), content_id
    if reading.digital_source_type != TRAINED_ALGORITHMIC_MEDIA:
        return MarkCheck("c2pa", "invalid", f"digitalSourceType is {reading.digital_source_type}"), content_id
    return MarkCheck("c2pa", "valid", f"{reading.state}, {signer}, trainedAlgorithmicMedia"), content_id


def _audit_lookup(settings: Settings, payload: int | None) -> tuple[int | None, str | None]:
    """The newest successful render whose content id carries this payload."""
    if payload is None or not settings.paths.audit_db.is_file():
        return None, None
    for entry in reversed(AuditLog(settings.paths.audit_db).entries()):
        content_id = (entry.record.extra or {}).get("content_id")
        if entry.record.action == "render" and content_id and payload_of(str(content_id)) == payload:
            return entry.id, entry.time
    return None, None


def review_of(settings: Settings, content_id: str | None) -> str | None:
    """Who decided the human review of the video with this content id (the newest `review` entry)."""
    if not content_id or not settings.paths.audit_db.is_file():
        return None
    for entry in reversed(AuditLog(settings.paths.audit_db).entries()):
        extra = entry.record.extra or {}
        if entry.record.action == "review" and extra.get("content_id") == content_id:
            words = f"{extra.get('decision')} by {entry.record.user} at {entry.time} (audit entry #{entry.id})"
            return words + (f": {extra['comment']}" if extra.get("comment") else "")
    return None
