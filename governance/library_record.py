"""Library changes as audit entries, and the check that binds every render to them.

Why: the library is plain files under the DHF home. Editing a stored `license.yaml` (adding a
channel) or swapping the consent document and writing its new hash into the licence would pass
every check that reads only those files. So each enrollment, rollback and revocation appends an
audit entry holding the sha256 of every file of the version it makes current, and every render
compares the version's files with that entry: a file changed outside `dhf avatar` is refused.
The audit log is a hash chain (`dhf audit verify`), and the render re-checks the one entry it uses.

Bundled avatars (`avatars/sample*`) are part of the installed code, not of the library, and are
trusted like the code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from avatars.errors import LicenseError
from avatars.library import Avatar
from config.errors import DhfError
from config.files import file_sha256
from governance.audit import AuditLog, AuditRecord

ACTIONS = ("avatar.add", "avatar.rollback", "avatar.revoke")
Result = TypeVar("Result")


def version_files(folder: Path) -> dict[str, str]:
    """sha256 of every file of a version folder (photo, licence, consent, enrollment data)."""
    return {path.name: file_sha256(path) for path in sorted(Path(folder).iterdir()) if path.is_file()}


def record_library_change(log: AuditLog, action: str, user: str, avatar: Avatar, detail: str = "") -> None:
    """A successful change: the version it made current, with the hashes of all its files."""
    files = version_files(avatar.folder)
    try:
        license_id: str | None = avatar.license().license_id
    except LicenseError:  # recorded as it is; the render refuses it with the licence's own reason
        license_id = None
    log.append(
        AuditRecord(
            action=action,
            outcome="success",
            user=user,
            detail=detail,
            avatar_id=avatar.avatar_id,
            avatar_version=avatar.version,
            license_id=license_id,
            license_sha256=files.get("license.yaml"),
            extra={"files": files},
        )
    )


def record_library_refusal(log: AuditLog, action: str, user: str, avatar_id: str, error: Exception) -> None:
    """A refused change (a bad photo, a licence that does not check out): who tried what, and why."""
    detail = str(error).splitlines()[0][:500] if str(error) else type(error).__name__
    log.append(AuditRecord(action=action, outcome="refused", user=user, detail=detail, avatar_id=avatar_id))


def check_enrolled(avatar: Avatar, log: AuditLog) -> None:
    """LicenseError unless the log says this version is current and not revoked, and the version's
    files are exactly those its last library change recorded.

    The log decides, not the files: deleting `revocation.yaml` and writing an old number into
    `current` leaves the log's revocation and current version standing."""
    if avatar.bundled:
        return
    where = f"avatar '{avatar.avatar_id}' v{avatar.version}"
    changes = log.library_changes(avatar.avatar_id)
    revocations = [change for change in changes if change.record.action == "avatar.revoke"]
    if revocations and avatar.version <= max(change.record.avatar_version or 0 for change in revocations):
        revoke = revocations[-1]
        raise LicenseError(
            f"{where} was revoked by {revoke.record.user} at {revoke.time} (audit entry {revoke.id}); rendering this "
            "person is no longer allowed, whatever the library files say (enroll a new version with a new consent)"
        )
    if changes and changes[-1].record.avatar_version != avatar.version:
        last = changes[-1]
        raise LicenseError(
            f"{where}: the library's `current` file names v{avatar.version}, but the audit log made "
            f"v{last.record.avatar_version} current ({last.record.action}, audit entry {last.id}); the library was "
            "edited outside `dhf avatar`: restore the file or use `dhf avatar rollback`"
        )
    entry = next((change for change in reversed(changes) if change.record.avatar_version == avatar.version), None)
    if entry is None:
        raise LicenseError(
            f"{where} has no enrollment record in the audit log (added outside `dhf avatar add`?); "
            "enroll it again with `dhf avatar add`"
        )
    recorded = entry.record.extra.get("files") or {}
    current = version_files(avatar.folder)
    for name in sorted(set(recorded) | set(current)):
        if recorded.get(name) != current.get(name):
            state = "is missing" if name not in current else ("was added" if name not in recorded else "was changed")
            raise LicenseError(
                f"{where}: {name} {state} since it was enrolled (audit entry {entry.id}); the library was edited "
                "outside `dhf avatar`: restore the file or enroll a new version with `dhf avatar add`"
            )


def recorded(
    log: AuditLog,
    action: str,
    user: str,
    avatar_id: str,
    change: Callable[[], Result],
    avatar_of: Callable[[Result], Avatar],
) -> Result:
    """Run one library change and audit it either way: the new current version and its file hashes
    on success, the one-line reason on a refusal (which is re-raised)."""
    try:
        result = change()
    except DhfError as exc:
        record_library_refusal(log, action, user, avatar_id, exc)
        raise
    avatar = avatar_of(result)
    record_library_change(log, action, user, avatar, getattr(avatar, "change", ""))
    return result
