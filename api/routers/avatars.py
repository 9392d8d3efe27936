"""`/v1/avatars`: the licensed avatars with their scope and validity (never the consent document)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from api.context import Context, Reader
from api.errors import ERRORS
from api.schemas import AvatarInfo, LicenseInfo
from avatars.library import Avatar, AvatarLibrary
from config.errors import DhfError

router = APIRouter(prefix="/v1/avatars", tags=["avatars"])


def license_info(avatar: Avatar) -> LicenseInfo | None:
    try:
        lic = avatar.license()
    except DhfError:  # no valid license record: listed without one
        return None
    today = dt.date.today()
    return LicenseInfo(
        license_id=lic.license_id,
        valid_from=lic.valid_from.isoformat(),
        valid_until=lic.valid_until.isoformat(),
        valid_now=lic.valid_from <= today <= lic.valid_until and not lic.revoked and not avatar.revoked,
        languages=list(lic.languages),
        channels=list(lic.channels),
        purposes=list(lic.purposes),
    )


@router.get("", response_model=list[AvatarInfo], responses=ERRORS)
def avatars(key: Reader, context: Context) -> list[AvatarInfo]:
    """Licensed avatars with their scope and validity (never the consent document)."""
    library = AvatarLibrary.from_settings(context.settings.paths)
    found = []
    for avatar_id in library.ids():
        try:
            avatar = library.get(avatar_id)
            versions = [v.version for v in library.versions(avatar_id)]
        except DhfError:  # a broken library entry is left out, not a 500
            continue
        found.append(
            AvatarInfo(
                avatar_id=avatar_id,
                name=avatar.name,
                version=avatar.version,
                versions=versions,
                revoked=avatar.revoked,
                license=license_info(avatar),
            )
        )
    return found
