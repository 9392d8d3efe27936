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

The marks pass only when all four are valid. A copy with only the watermark can still be traced
to its audit entry; the report says so. When the video went through human review (governance.review),
`review` says who approved it, from the audit log's `review` entry for its content id. Why the audit
log and not the C2PA manifest: the manifest is signed when the video is encoded, before anyone has
seen it; re-signing after approval would change the file the reviewer approved.

As a publication gate the verdict also needs the audit log: it must verify with its
witnesses and anchors (governance.trust), hold the render entry of this content id, and, where that
render was held for review, an approval entry naming this file's sha256. `exit_code` says which of
these failed, in the order a pipeline should act on them: tampered (5), rejected (7), not approved
(6), marks missing or no render entry (3). Nothing is read from a log that fails verification.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from config import Settings
from config.errors import EXIT_AUDIT_TAMPERED, EXIT_NOT_APPROVED, EXIT_REVIEW_REJECTED, EXIT_VERIFICATION_FAILED
from config.files import file_sha256
from fusion.watermark import WatermarkDecoder, payload_of
from governance.audit import AuditEntry, default_witness, entries_text
from governance.c2pa_signing import TRAINED_ALGORITHMIC_MEDIA, read_manifest
from governance.free_text import decider_of
from governance.label_detect import LabelDetector
from governance.trust import verify_anchored
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
    audit: MarkCheck = MarkCheck("audit", "absent", "not checked")  # the log: valid | absent | invalid
    review_state: str = "not required"  # not required | approved | pending | rejected | other file

    @property
    def passed(self) -> bool:
        """The four AI marks are valid (what a re-published copy can still prove on any machine)."""
        return all(check.status == "valid" for check in self.checks)

    @property
    def verdict(self) -> str:
        """One word for the publication gate: publishable, tampered, rejected, unapproved, unmarked."""
        if self.audit.status == "invalid":
            return "tampered"
        if self.review_state == "rejected":
            return "rejected"
        if self.review_state in ("pending", "other file"):
            return "unapproved"
        if not self.passed or self.audit.status != "valid":
            return "unmarked"
        return "publishable"

    @property
    def exit_code(self) -> int:
        return {
            "publishable": 0,
            "tampered": EXIT_AUDIT_TAMPERED,
            "rejected": EXIT_REVIEW_REJECTED,
            "unapproved": EXIT_NOT_APPROVED,
            "unmarked": EXIT_VERIFICATION_FAILED,
        }[self.verdict]

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "verdict": self.verdict, "exit_code": self.exit_code}


def verify_video(video: Path, settings: Settings) -> VerifyReport:
    info = probe(video)  # MediaError (a one-line user error) for a missing or unreadable file
    metadata_check, content_id = _metadata(info.tags)
    c2pa_check, c2pa_content_id, anchor = _c2pa(video, settings)
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
    audit, entries = _audit(settings, anchor)
    render = _render_entry(entries, expected, reading.payload if reading.found else None)
    if not reading.found:
        watermark = MarkCheck("watermark", "absent", f"no watermark read (sync {reading.sync_agreement}/16)")
    elif expected is not None and reading.payload != payload_of(expected):
        watermark = MarkCheck(
            "watermark", "invalid", f"payload {reading.payload:08x} does not match content id {expected}"
        )
    else:
        where = f"; audit entry #{render.id} ({render.time})" if render else "; no audit entry on this machine"
        watermark = MarkCheck(
            "watermark", "valid", f"payload {reading.payload:08x} (signal/noise {reading.snr}){where}"
        )
    if audit.status == "valid" and render is None:
        audit = MarkCheck("audit", "absent", f"{audit.detail}; but no render entry for this video")
    elif audit.status == "valid":
        audit = MarkCheck("audit", "valid", f"{audit.detail}; rendered in entry #{render.id} by {render.record.user}")
    review_state, review = _review(entries, render, video) if render is not None else ("not required", None)
    label = _label(label_scores)
    return VerifyReport(
        str(video),
        [label, metadata_check, watermark, c2pa_check],
        content_id=expected,  # what the file itself carries; a copy with only the watermark has none
        audit_entry=render.id if render else None,
        review=review,
        extra={"watermark_frames": reading.frames, "label_scores": [round(s, 2) for s in label_scores]},
        audit=audit,
        review_state=review_state,
    )


def _audit(settings: Settings, anchor: dict | None) -> tuple[MarkCheck, list[AuditEntry]]:
    """The log's own verdict (chain, witnesses, anchors, and the head the video's signed manifest
    recorded when it was authorized) and its entries, none of them if it failed."""
    database = settings.paths.audit_db
    witnesses = (default_witness(database), *settings.governance.audit_witnesses)
    if not database.is_file() and not any(Path(w).is_file() for w in witnesses):
        return MarkCheck("audit", "absent", f"no audit log on this machine ({database})"), []
    result, entries = verify_anchored(settings)
    if not result.ok:
        return MarkCheck("audit", "invalid", f"the audit log fails verification: {result.reason}"), []
    if anchor:
        number, digest = int(anchor.get("entry", 0)), str(anchor.get("hash", ""))
        where = f"the video's signed manifest anchors audit entry {number} (hash {digest[:12]}…)"
        if number > len(entries):
            return MarkCheck(
                "audit", "invalid", f"{where}, but the log has {len(entries)} entries: it was cut or replaced"
            ), []
        if entries[number - 1].entry_hash != digest:
            return MarkCheck("audit", "invalid", f"{where}, but that entry has another hash: the log was rewritten"), []
    return MarkCheck("audit", "valid", f"log intact ({entries_text(result.checked)})"), entries


def _render_entry(entries: list[AuditEntry], content_id: str | None, payload: int | None) -> AuditEntry | None:
    """The newest render entry of this content id (or, with no readable id, whose id carries the watermark)."""
    for entry in reversed(entries):
        found = (entry.record.extra or {}).get("content_id")
        if entry.record.action != "render" or not found:
            continue
        if (content_id is not None and found == content_id) or (
            content_id is None and payload is not None and payload_of(str(found)) == payload
        ):
            return entry
    return None


def _review(entries: list[AuditEntry], render: AuditEntry, video: Path) -> tuple[str, str | None]:
    """Was this render held for review, and did a decision entry approve exactly this file?"""
    review_id = (render.record.extra or {}).get("review")
    if not review_id:
        return "not required", None
    decisions = [e for e in entries if e.record.action == "review" and e.record.extra.get("review") == review_id]
    if not decisions:
        return "pending", f"held for review {review_id} (audit entry #{render.id}); nobody has approved it"
    entry = decisions[-1]
    extra = entry.record.extra
    words = (
        f"{extra.get('decision')} by {decider_of(entry.record.user, extra)} at {entry.time} (audit entry #{entry.id})"
    )
    words += f": {extra['comment']}" if extra.get("comment") else ""
    if extra.get("decision") != "approved":
        return "rejected", words
    if entry.record.output_sha256 != file_sha256(video):
        return "other file", f"{words}; but this file is not the approved one (its sha256 differs)"
    return "approved", words


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


def _c2pa(video: Path, settings: Settings) -> tuple[MarkCheck, str | None, dict | None]:
    """The manifest's check, its content id, and its audit anchor (only from a valid signature)."""
    reading = read_manifest(video, settings)
    content_id = reading.generation.get("content_id")
    if reading.status == "absent":
        return MarkCheck("c2pa", "absent", "no C2PA manifest"), None, None
    signer = f"signed by {reading.signer}"
    if reading.test_signer and "TEST" not in (reading.signer or ""):
        signer += " (TEST certificate)"
    if reading.status != "valid":
        problems = "; ".join(reading.problems) or "unreadable"
        return MarkCheck("c2pa", "invalid", f"{reading.state or 'unreadable'}: {problems}"), content_id, None
    if reading.digital_source_type != TRAINED_ALGORITHMIC_MEDIA:
        check = MarkCheck("c2pa", "invalid", f"digitalSourceType is {reading.digital_source_type}")
        return check, content_id, None
    anchor = reading.generation.get("audit_anchor")
    check = MarkCheck("c2pa", "valid", f"{reading.state}, {signer}, trainedAlgorithmicMedia")
    return check, content_id, anchor if isinstance(anchor, dict) else None
