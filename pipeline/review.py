"""Deciding a held video: approve (publish atomically) or reject (remove), each an audit entry.

Every path that decides (`dhf review approve|reject`, `POST /v1/reviews/{id}`, the input form of
a paused Prefect flow run, and the timeout) goes through `decide`, so they publish the same way and
write the same audit entry: action `review`, outcome `success` (approved) or `refused` (rejected),
the authenticated actor as the entry's user (the OS user, `api-key:<id>`, `prefect-ui`), the
reviewer's display name, the comment, the review id and the video's content id (which is how
`dhf verify` finds who approved a file it reads the watermark or C2PA manifest of).

The audit log is the state (issue 25); the review record under `<home>/reviews/` is a cache of it.
So a decision is read from the log (a restored record cannot undo it), the deadline and the hashes
of what may be published come from the render entry that held the video (an edited deadline or a
swapped held file is refused, naming the file and the entry), and whoever requested the video
cannot approve it unless `governance.break_glass` names them (audited as break-glass).

A review is decided once. Undecided past its deadline it is rejected ("timed out") by the next
look at the store (`expire_overdue`, run before every list and decision) or by the paused flow
run's timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from config import Settings
from config.errors import OutputPathError
from config.files import directory_lock, file_sha256, write_text_atomic
from governance.audit import AuditEntry, AuditLog, AuditRecord
from governance.free_text import check_free_text, decider_of, named_actor
from pipeline.report import RenderReport
from pipeline.request import output_paths
from pipeline.review_store import (
    ReviewError,
    ReviewForbiddenError,
    ReviewRecord,
    ReviewStore,
    now_text,
    parse_time,
)

Decision = Literal["approve", "reject"]
TIMEOUT_REVIEWER = "system:review-timeout"


@dataclass(frozen=True)
class Decider:
    """Who decides: `actor` is authenticated (OS user, `api-key:<id>`, `prefect-ui`), `name` is what
    they call themselves (checked: one line, no control characters)."""

    actor: str
    name: str = ""

    def __post_init__(self) -> None:
        check_free_text(self.actor, "the deciding actor", 200, required=True)
        check_free_text(self.name, "the reviewer name", 100)

    @property
    def shown(self) -> str:
        return named_actor(self.name, self.actor)


TIMEOUT = Decider(TIMEOUT_REVIEWER)


def decide(
    settings: Settings, review_id: str, decision: Decision, decider: Decider, comment: str = "", reason: str = ""
) -> ReviewRecord:
    """Approve (publish the held video, captions and report under the requested name, as one renamed
    unit under the output folder's lock) or reject (remove the held files). One audit entry either way."""
    comment = check_free_text(comment, "the review comment", 2000)
    store = ReviewStore(settings)
    log = AuditLog.from_settings(settings)
    with store.locked():
        log.require_intact()  # decisions read from a tampered log would be the tamperer's decisions
        record = store.get(review_id)
        held = _held_entry(log, review_id)
        _refuse_if_decided(log, record)
        if record.state != "pending":
            raise ReviewError(
                f"review {review_id} was already {record.state} by {record.decided_by} at {record.decided}; "
                "a decision is final (render again for a new review)"
            )
        if _overdue(record, held):
            _apply(settings, log, store, record, held, "reject", TIMEOUT, "", "timed out")
            raise ReviewError(
                f"review {review_id} timed out at {_deadline(record, held)} and was rejected; render the video again"
            )
        break_glass = False
        if decision == "approve" and decider.actor == held.record.user:
            if decider.actor not in settings.governance.break_glass:
                raise ReviewForbiddenError(
                    f"{decider.actor} requested this video (audit entry {held.id}) and cannot also approve it "
                    "(separation of duties); another reviewer must decide"
                )
            break_glass = True
        return _apply(settings, log, store, record, held, decision, decider, comment, reason, break_glass)


def expire_overdue(settings: Settings) -> list[ReviewRecord]:
    """Reject every pending review past its deadline (audited as timed out); returns them. A review
    whose render entry is not in the log (yet) is left alone: `decide` refuses it with the reason."""
    store = ReviewStore(settings)
    log = AuditLog.from_settings(settings)
    expired = []
    with store.locked():
        for record in store.all():
            if record.state != "pending":
                continue
            held = log.find("render", review=record.id)
            if held and not log.find("review", review=record.id) and _overdue(record, held[-1]):
                expired.append(_apply(settings, log, store, record, held[-1], "reject", TIMEOUT, "", "timed out"))
    return expired


def list_reviews(settings: Settings, state: str | None = "pending") -> list[ReviewRecord]:
    """The reviews in `state`, as the audit log decided them (a restored or edited record shows the
    logged decision, not its own); overdue ones are timed out first."""
    expire_overdue(settings)
    records = _as_logged(settings, ReviewStore(settings).all())
    return [record for record in records if state in (None, "all") or record.state == state]


def get_review(settings: Settings, review_id: str) -> ReviewRecord:
    """One review as the audit log decided it (overdue ones timed out first)."""
    expire_overdue(settings)
    return _as_logged(settings, [ReviewStore(settings).get(review_id)])[0]


def _as_logged(settings: Settings, records: list[ReviewRecord]) -> list[ReviewRecord]:
    """Each record's state, decider and decision time from its `review` entry (none: pending)."""
    decisions = {
        str(entry.record.extra.get("review")): entry for entry in AuditLog.from_settings(settings).find("review")
    }
    logged = []
    for record in records:
        entry = decisions.get(record.id)
        if entry is None:
            update = {"state": "pending", "decided_by": None, "decided": None, "audit_entry": None}
        else:
            extra = entry.record.extra
            update = {
                "state": extra.get("decision"),
                "decided_by": decider_of(entry.record.user, extra),
                "decided": entry.time,
                "comment": str(extra.get("comment") or ""),
                "reason": str(extra.get("reason") or ""),
                "audit_entry": entry.id,
            }
        logged.append(record.model_copy(update=update))
    return logged


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


def _held_entry(log: AuditLog, review_id: str) -> AuditEntry:
    """The render entry that held this review's video: its requester, deadline and hashes are the truth."""
    found = log.find("render", review=review_id)
    if not found:
        raise ReviewError(
            f"review {review_id} has no render entry in the audit log (the record under reviews/ was not written "
            "by a render, or the render is still finishing); nothing can be published from it: render again"
        )
    return found[-1]


def _refuse_if_decided(log: AuditLog, record: ReviewRecord) -> None:
    """A decision in the log is final, whatever the record file says (it may have been restored)."""
    decided = log.find("review", review=record.id)
    if not decided:
        return
    entry = decided[-1]
    state = entry.record.extra.get("decision")
    where = "" if record.state != "pending" else " (its record under reviews/ says pending: it was restored or edited)"
    raise ReviewError(
        f"review {record.id} was already {state} by {entry.record.extra.get('reviewer') or entry.record.user} at "
        f"{entry.time} (audit entry {entry.id}){where}; a decision is final (render again for a new review)"
    )


def _deadline(record: ReviewRecord, held: AuditEntry) -> str:
    """The deadline the render entry recorded (an edited record cannot extend it); older entries: the record's."""
    return str(held.record.extra.get("review_deadline") or record.deadline)


def _overdue(record: ReviewRecord, held: AuditEntry) -> bool:
    return dt.datetime.now(dt.UTC) >= parse_time(_deadline(record, held))


def _apply(
    settings: Settings, log: AuditLog, store: ReviewStore, record: ReviewRecord, held: AuditEntry, decision: Decision,
    decider: Decider, comment: str, reason: str, break_glass: bool = False,
) -> ReviewRecord:  # fmt: skip
    decided = now_text()
    state = "approved" if decision == "approve" else "rejected"
    output = Path(record.output)
    staged = {name: Path(path) for name, path in record.staged.items()}
    if decision == "approve":
        _publish(record, held, staged, output, decider.shown, comment, decided)
    else:
        for path in staged.values():
            path.unlink(missing_ok=True)
    entry = log.append(
        AuditRecord(
            action="review",
            outcome="success" if decision == "approve" else "refused",
            user=decider.actor,
            detail=(f"{state}" + (f" ({reason})" if reason else "") + (f": {comment}" if comment else ""))[:500],
            avatar_id=record.avatar_id,
            output=str(output),
            output_sha256=held.record.output_sha256 if decision == "approve" else None,
            quality=record.quality,
            extra={
                "review": record.id,
                "decision": state,
                "reviewer": decider.name or decider.actor,
                "comment": comment,
                "reason": reason,
                "content_id": record.content_id,
                "requested_by": held.record.user,
                "render_entry": held.id,
                **({"break_glass": True} if break_glass else {}),
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
        update={"state": state, "decided_by": decider.shown, "comment": comment, "decided": decided, "reason": reason,
                "audit_entry": entry.id}
    )  # fmt: skip
    store.save(updated)
    if record.batch:
        _update_manifest(output, state)
    return updated


def _check_held_files(record: ReviewRecord, held: AuditEntry, staged: dict[str, Path]) -> RenderReport:
    """Approval publishes only what the render entry recorded: the video's and captions' sha256, and a
    report naming that video. Anything else (a held file overwritten, issue 25) is refused, naming it."""
    expected = {"video": held.record.output_sha256, **(held.record.extra.get("held_sha256") or {})}
    for name, sha in expected.items():
        path = staged.get(name)
        if path is None:
            continue
        if not path.is_file():
            raise ReviewError(f"the held {name} {path} is gone; reject this review and render again")
        if sha is None or file_sha256(path) != sha:
            raise ReviewError(
                f"the held {name} {path} is not the file that was rendered (its sha256 differs from audit entry "
                f"{held.id}); nothing was published: reject this review and render again"
            )
    report = RenderReport.load(staged["report"])
    if report.sha256 != held.record.output_sha256 or report.provenance.content_id != record.content_id:
        raise ReviewError(
            f"the held report {staged['report']} does not describe the rendered video of audit entry {held.id}; "
            "nothing was published: reject this review and render again"
        )
    return report


def _publish(
    record: ReviewRecord, held: AuditEntry, staged: dict[str, Path], output: Path, reviewer: str, comment: str,
    when: str,
) -> None:  # fmt: skip
    final = output_paths(output)
    report = _check_held_files(record, held, staged)
    review = report.review.model_copy(update={"state": "approved", "reviewer": reviewer, "comment": comment,
                                              "decided": when})  # fmt: skip
    captions = {name: str(final[name]) for name in ("srt", "vtt") if name in staged}
    published = report.model_copy(update={"published": True, "output": str(output), "captions": captions,
                                          "review": review})  # fmt: skip
    with directory_lock(output.parent):
        before = _checked_identity(staged["video"], held)
        try:
            os.replace(staged["video"], output)
            if _identity(output) != before:  # swapped between the check and the rename: take it back
                output.unlink(missing_ok=True)
                raise ReviewError(f"the held video {staged['video']} was replaced while it was being published")
            for name in captions:
                os.replace(staged[name], final[name])
            if "thumbnail" in staged and staged["thumbnail"].is_file():
                os.replace(staged["thumbnail"], output.with_suffix(".jpg"))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise OutputPathError(f"could not publish {output} ({reason}); check the folder and approve again") from exc
        published.save(final["report"])
        staged["report"].unlink(missing_ok=True)


def _identity(path: Path) -> tuple[int, int, int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _checked_identity(video: Path, held: AuditEntry) -> tuple[int, int, int, int]:
    """The held video's identity (device, inode, size, mtime) once its content matched the entry again,
    under the folder lock: the rename then moves exactly this file, which is checked after the rename."""
    before = _identity(video)
    if file_sha256(video) != held.record.output_sha256 or _identity(video) != before:
        raise ReviewError(
            f"the held video {video} is not the file that was rendered (audit entry {held.id}); nothing was published"
        )
    return before


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
