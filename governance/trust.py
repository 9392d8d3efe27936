"""Is the audit log the whole story? The chain, its witnesses, and every file that names an entry.

Why: the audit log is the state of consent, review and provenance; the files beside it
(the library's `current` and `revocation.yaml`, the review records under `<home>/reviews/`) are caches
of it. A log that was emptied or cut short reads as a valid, shorter chain, so `verify_anchored` also
reads what points into the log: the witness files (governance.audit), each review record's decision
entry and the render entry that held its video, and each enrolled avatar version's library entry.
A log shorter than any anchor, or one whose entries say something else, fails, naming the file.

This reads review records as plain JSON (pipeline.review_store writes them): governance sits below
the pipeline and must not import it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from avatars.library import AvatarLibrary
from config import Settings
from governance.audit import AuditEntry, AuditLog, VerifyResult


def verify_anchored(settings: Settings) -> tuple[VerifyResult, list[AuditEntry]]:
    """The chain and witnesses (AuditLog.verify_with_witnesses), then the review records and the
    library; with the entries it read (none when the log failed: nothing in it may be believed)."""
    log = AuditLog.from_settings(settings)
    result = log.verify_with_witnesses()
    if not result.ok:
        return result, []
    entries = log.entries()
    problem = _review_anchors(settings, {entry.id: entry for entry in entries}) or _library_anchors(settings, log)
    if problem:
        return VerifyResult(ok=False, checked=result.checked, first_bad=problem[0], reason=problem[1]), []
    return result, entries


def _review_anchors(settings: Settings, entries: dict[int, AuditEntry]) -> tuple[int | None, str] | None:
    folder = settings.paths.home / "reviews"
    held = {e.record.extra.get("review"): e for e in entries.values() if e.record.action == "render"}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            review_id, entry_id = str(record["id"]), record.get("audit_entry")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a review record (pipeline.review_store skips it the same way)
        if entry_id is not None:
            entry = entries.get(int(entry_id))
            if entry is None:
                return int(entry_id), (
                    f"the review record {path} names audit entry {entry_id}, which the log does not have "
                    f"({len(entries)} entries): entries were removed or the log was replaced"
                )
            if entry.record.action != "review" or entry.record.extra.get("review") != review_id:
                return int(entry_id), (
                    f"the review record {path} names audit entry {entry_id}, but that entry is not the decision of "
                    f"review {review_id}: the log was replaced or the record edited"
                )
        if review_id not in held and _old_enough(record):
            return None, (
                f"the review record {path} holds a video the audit log has no render entry for: entries were "
                "removed or the log was replaced"
            )
    return None


def _old_enough(record: dict) -> bool:
    """A review record is written a moment before its render's entry is appended: a record created in
    the last minute may still be waiting for it (a render in progress), not evidence of a lost entry."""
    try:
        created = datetime.strptime(str(record.get("created")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return datetime.now(UTC) - created > timedelta(minutes=1)


def _library_anchors(settings: Settings, log: AuditLog) -> tuple[int | None, str] | None:
    library = AvatarLibrary(settings.paths.avatars, bundled=None)
    for avatar_id in library.ids():
        changes = log.library_changes(avatar_id)
        recorded = {entry.record.avatar_version for entry in changes}
        for number in library.version_numbers(avatar_id):
            if number not in recorded:
                folder = Path(library.root) / avatar_id / "versions" / str(number)
                return None, (
                    f"the library holds {folder} but the audit log has no entry that enrolled it: entries were "
                    "removed, the log was replaced, or the version was added outside `dhf avatar`"
                )
    return None
