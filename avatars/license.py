"""Authorization records (`license.yaml`) and the check every render runs before any compute.

There is deliberately no parameter to skip the check: callers can only pass the intended use
(language, channel, purpose) and the time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml

from avatars.errors import LicenseError
from config.files import file_sha256, load_yaml

ANY = "*"


@dataclass(frozen=True)
class License:
    license_id: str
    avatar_id: str
    holder: str
    granted_by: str
    consent_document: Path
    consent_sha256: str
    languages: tuple[str, ...]
    channels: tuple[str, ...]
    purposes: tuple[str, ...]
    valid_from: dt.date
    valid_until: dt.date
    revoked: bool
    path: Path
    review_required: bool = False  # `review: required`: every video of this person needs a human approval

    def as_report(self) -> dict[str, object]:
        return {
            "license_id": self.license_id,
            "holder": self.holder,
            "valid_until": self.valid_until.isoformat(),
            "scope": {
                "languages": list(self.languages),
                "channels": list(self.channels),
                "purposes": list(self.purposes),
            },
            "sha256": file_sha256(self.path),
        }


def _date(value: object, field: str, path: Path) -> dt.date:
    """A licence date. A time part is accepted (YAML reads `2030-12-31T23:59:59` as a datetime): the
    day it falls on in UTC counts, whole (a naive time is taken as UTC). Licences are granted by day."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise LicenseError(f"{path}: '{field}' must be a date like 2026-12-31, not '{value}'") from exc
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    raise LicenseError(f"{path}: '{field}' must be a date like 2026-12-31, not '{value}'")


def load_license(path: Path) -> License:
    path = Path(path)
    if not path.is_file():
        raise LicenseError(f"no license record at {path}; add a license.yaml signed off by the person shown")
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise LicenseError(f"license {path} must be a mapping of fields; see avatars/sample/license.yaml")
        scope = data.get("scope") or {}
        if not isinstance(scope, dict):
            raise LicenseError(f"license {path}: 'scope' must map languages/channels/purposes to lists")
        for key in ("languages", "channels", "purposes"):
            if not isinstance(scope.get(key) or [], list):
                raise LicenseError(f"license {path}: scope.{key} must be a list, e.g. [{scope.get(key)}]")
        return License(
            license_id=str(data["license_id"]),
            avatar_id=str(data["avatar_id"]),
            holder=str(data["holder"]),
            granted_by=str(data.get("granted_by", "")),
            consent_document=path.parent / str(data["consent_document"]),
            consent_sha256=str(data["consent_sha256"]).lower(),
            languages=tuple(scope.get("languages") or ()),
            channels=tuple(scope.get("channels") or ()),
            purposes=tuple(scope.get("purposes") or ()),
            valid_from=_date(data["valid_from"], "valid_from", path),
            valid_until=_date(data["valid_until"], "valid_until", path),
            revoked=bool(data.get("revoked", False)),
            path=path,
            review_required=str(data.get("review", "")).strip().lower() == "required",
        )
    except KeyError as exc:
        raise LicenseError(f"license {path} lacks required field {exc}; see avatars/sample/license.yaml") from exc
    except yaml.YAMLError as exc:
        raise LicenseError(f"license {path} is not valid YAML; fix the file") from exc


def _allowed(value: str, allowed: tuple[str, ...]) -> bool:
    return ANY in allowed or value in allowed


def check_license_record(lic: License, avatar_id: str, today: dt.date | None = None) -> None:
    """Everything but the scope: right avatar, not revoked, consent document intact, in its dates."""
    today = today or dt.date.today()
    where = f"avatar '{avatar_id}' (license {lic.license_id})"
    if lic.avatar_id != avatar_id:
        raise LicenseError(f"{where}: the license is for avatar '{lic.avatar_id}'; attach the right license")
    if lic.revoked:
        raise LicenseError(f"{where}: the license was revoked; rendering this person is no longer allowed")
    if not lic.consent_document.is_file():
        raise LicenseError(f"{where}: consent document {lic.consent_document.name} is missing; restore it")
    if file_sha256(lic.consent_document) != lic.consent_sha256:
        raise LicenseError(f"{where}: consent document hash mismatch (altered?); re-issue the license")
    if today < lic.valid_from:
        raise LicenseError(f"{where}: not valid until {lic.valid_from.isoformat()}")
    if today > lic.valid_until:
        raise LicenseError(f"{where}: expired on {lic.valid_until.isoformat()}; renew the consent")


def check_license(
    lic: License, avatar_id: str, language: str, channel: str, purpose: str, today: dt.date | None = None
) -> None:
    """Raise LicenseError naming the first reason this use is not authorized."""
    check_license_record(lic, avatar_id, today)
    where = f"avatar '{avatar_id}' (license {lic.license_id})"
    if not _allowed(language, lic.languages):
        raise LicenseError(f"{where}: language '{language}' is out of scope (allowed: {', '.join(lic.languages)})")
    if not _allowed(channel, lic.channels):
        raise LicenseError(f"{where}: channel '{channel}' is out of scope (allowed: {', '.join(lic.channels)})")
    if not _allowed(purpose, lic.purposes):
        raise LicenseError(f"{where}: purpose '{purpose}' is out of scope (allowed: {', '.join(lic.purposes)})")
