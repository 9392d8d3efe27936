"""The library: the licensed avatars (versions, consent and licence state, whether their videos
need review) and this key's batch runs (linked to the Prefect UI when a Prefect server is set).

Why the licence state is spelled out rather than a green/red dot: an editor choosing an avatar must
see *why* it cannot be used (expired on a date, revoked, no consent on file, out of scope for a
channel), in words, without colour alone carrying the meaning.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.context import get_context
from api.studio.pages import PREFIX, page
from api.studio.session import StudioUser, require
from avatars.library import Avatar, AvatarLibrary
from config import Settings
from config.errors import DhfError

router = APIRouter(prefix=f"{PREFIX}/library", include_in_schema=False)
LibraryUser = Annotated[StudioUser, Depends(require("read"))]
BATCHES_SHOWN = 50


@dataclass(frozen=True)
class VersionRow:
    version: int
    created: str
    created_by: str
    change: str


@dataclass(frozen=True)
class AvatarRow:
    avatar_id: str
    name: str
    version: int
    versions: list[VersionRow]
    state: str  # usable | expired | not yet valid | revoked | no licence
    problem: str  # why it cannot be used, one line ("" when usable)
    license_id: str = ""
    holder: str = ""
    valid_from: str = ""
    valid_until: str = ""
    languages: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    consent: str = ""  # the consent document on file (its hash checked when the licence was read)
    review_required: bool = False


def avatar_row(library: AvatarLibrary, avatar: Avatar, today: dt.date) -> AvatarRow:
    """What the library page says about one avatar, its licence state in words."""
    try:
        versions = [
            VersionRow(v.version, v.created, v.created_by, v.change) for v in library.versions(avatar.avatar_id)
        ]
    except DhfError:
        versions = []
    base = {"avatar_id": avatar.avatar_id, "name": avatar.name, "version": avatar.version, "versions": versions}
    if avatar.revoked:
        gone = avatar.revocation
        problem = f"revoked on {gone.time[:10]} by {gone.by}: {gone.reason}" if gone else "the avatar was revoked"
        return AvatarRow(**base, state="revoked", problem=problem)
    try:
        lic = avatar.license()
    except DhfError as exc:
        return AvatarRow(**base, state="no licence", problem=str(exc).splitlines()[0][:300])
    if lic.revoked:
        state, problem = "revoked", f"licence {lic.license_id} was revoked"
    elif today > lic.valid_until:
        state, problem = "expired", f"licence {lic.license_id} expired on {lic.valid_until.isoformat()}"
    elif today < lic.valid_from:
        state, problem = "not yet valid", f"licence {lic.license_id} is valid from {lic.valid_from.isoformat()}"
    else:
        state, problem = "usable", ""
    return AvatarRow(
        **base,
        state=state,
        problem=problem,
        license_id=lic.license_id,
        holder=lic.holder,
        valid_from=lic.valid_from.isoformat(),
        valid_until=lic.valid_until.isoformat(),
        languages=lic.languages,
        channels=lic.channels,
        purposes=lic.purposes,
        consent=f"{lic.consent_document.name} (sha256 {lic.consent_sha256[:12]}…)",
        review_required=lic.review_required,
    )


def avatar_rows(settings: Settings, today: dt.date | None = None) -> list[AvatarRow]:
    library = AvatarLibrary.from_settings(settings.paths)
    today = today or dt.date.today()
    rows = []
    for avatar_id in library.ids():
        try:
            rows.append(avatar_row(library, library.get(avatar_id), today))
        except DhfError as exc:  # a broken entry is listed as such, not a 500
            rows.append(AvatarRow(avatar_id, avatar_id, 0, [], "no licence", str(exc).splitlines()[0][:300]))
    return rows


def prefect_ui_url(environ: Mapping[str, str]) -> str:
    """The Prefect UI's address when a Prefect server is configured (PREFECT_UI_URL, or the UI beside
    PREFECT_API_URL's `/api`); "" without one."""
    if environ.get("PREFECT_UI_URL"):
        return environ["PREFECT_UI_URL"].rstrip("/")
    api = environ.get("PREFECT_API_URL", "").rstrip("/")
    return api.removesuffix("/api") if api.startswith(("http://", "https://")) else ""


@router.get("", response_class=HTMLResponse)
def library(request: Request, user: LibraryUser) -> HTMLResponse:
    context = get_context(request)
    owner = None if user.can("admin") else user.key.id  # admin keys see every key's batches, as in the API
    batches = context.jobs.recent(owner, kinds=("batch",), limit=BATCHES_SHOWN)
    return page(
        request, "library.html", "Library", user, active="library",
        avatars=avatar_rows(context.settings), batches=batches, prefect_ui=prefect_ui_url(os.environ),
    )  # fmt: skip
