"""Deciding a held video: approve (publish atomically) or reject (remove), each an audit entry.

Every path that decides (`dhf review approve|reject`, `POST /v1/reviews/{id}`, the input form of
a paused Prefect flow run, and the timeout) goes through `decide`, so they publish the same way and
write the same audit entry: action `review`, outcome `success` (approved) or `refused` (rejected),
the reviewer as the entry's user, the comment, the review id and the video's content id (which is
how `dhf verify` finds who approved a file it reads the watermark or C2PA manifest of).

A review is decided once. Undecided past its deadline it is rejected ("timed out") by the next
look at the store (`expire_overdue`, run before every list and decision) or by the paused flow
run's timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Literal

from config import Settings
from config.errors import OutputPathError
from config.files import directory_lock, write_text_atomic
from governance.audit import AuditLog, AuditRecord
from pipeline.report import RenderReport
from pipeline.request import output_paths
from pipeline.review_store import ReviewError, ReviewRecord, ReviewStore, now_text, parse_time

Decision = Literal["approve", "reject"]
TIMEOUT_REVIEWER = "system:review-timeout"


def decide(
    settings: Settings, review_id: str, decision: Decision, reviewer: str, comment: str = "", reason: str = ""
) -> ReviewRecord:
    """Approve (publish the held video, captions and report under the requested name, as one renamed
    unit under the output folder's lock) or reject (remove the held files). One audit entry either way."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise ReviewError("name the reviewer (--reviewer NAME, or `reviewer` in the request); the audit log records it")
    store = ReviewStore(settings)
    with store.locked():
        record = store.get(review_id)
        if record.state != "pending":
            raise ReviewError(
                f"review {review_id} was already {record.state} by {record.decided_by} at {record.decided}; "
                "a decision is final (render again for a new review)"
            )
        if decision == "approve" and _overdue(record):
            _apply(settings, store, record, "reject", TIMEOUT_REVIEWER, "", "timed out")
            raise ReviewError(
                f"review {review_id} timed out at {record.deadline} and was rejected; render the video again"
            )
        return _apply(settings, store, record, decision, reviewer, comment.strip(), reason)


def expire_overdue(settings: Settings) -> list[ReviewRecord]:
    """Reject every pending review past its deadline (audited as timed out); returns them."""
    store = ReviewStore(settings)
    expired = []
    with store.locked():
        for record in store.all():
            if record.state == "pending" and _overdue(record):
                expired.append(_apply(settings, store, record, "reject", TIMEOUT_REVIEWER, "", "timed out"))
    return expired


def list_reviews(settings: Settings, state: str | None = "pending") -> list[ReviewRecord]:
    expire_overdue(settings)
    records = ReviewStore(settings).all()
    return [record for record in records if state in (None, "all") or record.state == state]


def attach_flow_run(settings: Settings, review_id: str, flow_run_id: str) -> ReviewRecord:
    """Remember which paused flow run waits for this review (so a decision elsewhere can resume it)."""
    store = ReviewStore(settings)
    with store.locked():
        return store.save(store.get(review_id).model_copy(update={"flow_run_id": flow_run_id}))


def attach_batch(settings: Settings, review_id: str, label: str, report: RenderReport) -> ReviewRecord:
    """A batch video's review: name it after its item and keep the batch key in the held report."""
    store = ReviewStore(settings)
    with store.locked():
        record = store.get(review_id)
        report.save(Path(record.staged["report"]))
        return store.save(record.model_copy(update={"batch": label}))


def _overdue(record: ReviewRecord) -> bool:
    return dt.datetime.now(dt.UTC) >= parse_time(record.deadline)


def _apply(
    settings: Settings, store: ReviewStore, record: ReviewRecord, decision: Decision, reviewer: str, comment: str,
    reason: str,
) -> ReviewRecord:  # fmt: skip
    decided = now_text()
    state = "approved" if decision == "approve" else "rejected"
    output = Path(record.output)
    staged = {name: Path(path) for name, path in record.staged.items()}
    if decision == "approve":
        _publish(record, staged, output, reviewer, comment, decided)
    else:
        for path in staged.values():
            path.unlink(missing_ok=True)
    entry = AuditLog(settings.paths.audit_db).append(
        AuditRecord(
            action="review",
            outcome="success" if decision == "approve" else "refused",
            user=reviewer,
            detail=(f"{state}" + (f" ({reason})" if reason else "") + (f": {comment}" if comment else ""))[:500],
            avatar_id=record.avatar_id,
            output=str(output),
            output_sha256=record.sha256 if decision == "approve" else None,
            quality=record.quality,
            extra={
                "review": record.id,
                "decision": state,
                "comment": comment,
                "reason": reason,
                "content_id": record.content_id,
                "requested_by": record.requested_by,
                **({"batch": record.batch} if record.batch else {}),
            },
        )
    )
    if decision == "approve":  # the published report names its approval, audit entry included
        report_path = output_paths(output)["report"]
        report = RenderReport.load(report_path)
        report.model_copy(update={"review": report.review.model_copy(update={"audit_entry": entry.id})}).save(
            report_path
        )
    updated = record.model_copy(
        update={"state": state, "decided_by": reviewer, "comment": comment, "decided": decided, "reason": reason,
                "audit_entry": entry.id}
    )  # fmt: skip
    store.save(updated)
    if record.batch:
        _update_manifest(output, state)
    return updated


def _publish(record: ReviewRecord, staged: dict[str, Path], output: Path, reviewer: str, comment: str, when: str):
    final = output_paths(output)
    report = RenderReport.load(staged["report"])
    review = report.review.model_copy(update={"state": "approved", "reviewer": reviewer, "comment": comment,
                                              "decided": when})  # fmt: skip
    captions = {name: str(final[name]) for name in ("srt", "vtt") if name in staged}
    published = report.model_copy(update={"published": True, "output": str(output), "captions": captions,
                                          "review": review})  # fmt: skip
    with directory_lock(output.parent):
        if not staged["video"].is_file():
            raise ReviewError(f"the held video {staged['video']} is gone; render again for a new review")
        try:
            os.replace(staged["video"], output)
            for name in captions:
                os.replace(staged[name], final[name])
            if "thumbnail" in staged and staged["thumbnail"].is_file():
                os.replace(staged["thumbnail"], output.with_suffix(".jpg"))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise OutputPathError(f"could not publish {output} ({reason}); check the folder and approve again") from exc
        published.save(final["report"])
        staged["report"].unlink(missing_ok=True)


def _update_manifest(output: Path, state: str) -> None:
    """A batch video's row in `<out>/<name>/manifest.json|csv` takes the decision (`review` column)."""
    folder = output.parent.parent
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return
    with directory_lock(folder):
        rows = json.loads(manifest.read_text(encoding="utf-8"))
        for row in rows:
            if row.get("output") == str(output):
                row["review"] = state
                row["status"] = "rendered" if state == "approved" else "rejected"
        write_text_atomic(manifest, json.dumps(rows, ensure_ascii=False, indent=2))
        _write_csv(folder / "manifest.csv", rows)


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
