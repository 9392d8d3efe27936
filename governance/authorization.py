"""May this avatar be rendered for this use? The one check the CLI, the API, batches and flows share.

Why one function: "no rendering without a valid avatar authorization" must mean the same thing on
every path, so revocation, the license record and the requested scope are checked here and nowhere
else. There is deliberately no parameter to skip it."""

from __future__ import annotations

import datetime as dt

from avatars.errors import LicenseError
from avatars.library import Avatar
from avatars.license import License, check_license
from governance.audit import AuditLog
from governance.library_record import check_enrolled


def authorize(
    avatar: Avatar, language: str, channel: str, purpose: str, log: AuditLog, today: dt.date | None = None
) -> License:
    """The avatar's license when it allows this use now; LicenseError naming the first reason otherwise.

    `log` is the audit log whose library entries decide the current version and revocation and
    which the version's files must match (a licence edited in place is refused); it is required, like
    everything else here, and it must verify with its witnesses: a log that was tampered with cannot
    vouch for a consent."""
    log.require_intact()
    if avatar.revoked:
        revocation = avatar.revocation
        raise LicenseError(
            f"avatar '{avatar.avatar_id}' v{avatar.version} was revoked on {revocation.time} by "
            f"{revocation.by}; rendering this person is no longer allowed"
        )
    check_enrolled(avatar, log)
    lic = avatar.license()
    check_license(lic, avatar.avatar_id, language, channel, purpose, today)
    return lic
