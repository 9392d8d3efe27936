"""The avatar library: versioned, immutable avatar folders, plus the bundled sample.

Layout of an enrolled avatar (under `<home>/avatars`, or any root given):

    <id>/versions/<n>/avatar.yaml    id, version, name, photo, created, created_by, change
    <id>/versions/<n>/<photo>        the source photo (copied, never edited)
    <id>/versions/<n>/license.yaml   the authorization, and its consent document beside it
    <id>/versions/<n>/enrollment.npz landmarks, identity embedding; checks.json; thumbnail.jpg
    <id>/current                     the version renders use (changed by add, rollback, revoke)
    <id>/revocation.yaml             written by revoke: every version up to `through_version` is refused

A version folder is built under a temporary name and renamed into place, so a crash never leaves a
half-written version; `current` is replaced atomically. Changes to one avatar are serialized with a
lock file. Revocation is sticky: a rollback cannot bring a revoked version back; only a new version
with a new consent (`dhf avatar add ... --id <id>`) can be rendered again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from avatars.errors import AvatarError, EnrollmentError
from avatars.license import License, load_license
from config import PathSettings
from config.files import file_sha256, load_yaml, write_text_atomic

BUNDLED = Path(__file__).resolve().parent
AVATAR_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Revocation:
    through_version: int
    time: str
    by: str
    reason: str


@dataclass(frozen=True)
class Avatar:
    avatar_id: str
    version: int
    name: str
    folder: Path
    photo: Path
    bundled: bool = False
    created: str = ""
    created_by: str = ""
    change: str = ""
    revocation: Revocation | None = None
    idle_video: Path | None = None  # an idle-loop clip used as the moving base; `photo` is its reference frame
    recording: Path | None = None  # a personal avatar's consented speaking recording (README: Personal avatars)
    mouth_bank: Path | None = None  # ... and the mouth bank built from it (fusion/mouth_bank.py)

    def license(self) -> License:
        return load_license(self.folder / "license.yaml")

    def photo_sha256(self) -> str:
        return file_sha256(self.photo)

    @property
    def enrollment_file(self) -> Path:
        """`enrollment.npz` of this version (absent for the bundled sample)."""
        return self.folder / "enrollment.npz"

    def enrolled_embedding(self) -> np.ndarray | None:
        """The identity embedding measured at enrollment (None: not enrolled through `dhf avatar add`)."""
        if not self.enrollment_file.is_file():
            return None
        with np.load(self.enrollment_file) as data:
            return data["embedding"] if "embedding" in data.files else None

    @property
    def revoked(self) -> bool:
        return self.revocation is not None and self.version <= self.revocation.through_version


def valid_id(avatar_id: str) -> str:
    if not AVATAR_ID.match(avatar_id or ""):
        raise AvatarError(f"invalid avatar id '{avatar_id}': use lowercase letters, digits, '-' or '_'")
    return avatar_id


def _read_yaml(path: Path) -> dict:
    try:
        return load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AvatarError(f"{path} is unreadable ({exc}); restore it from a backup or re-enroll") from exc


def _load_version(folder: Path, bundled: bool = False, revocation: Revocation | None = None) -> Avatar:
    data = _read_yaml(folder / "avatar.yaml")
    try:
        return Avatar(
            avatar_id=str(data["id"]),
            version=int(data.get("version", 1)),
            name=str(data.get("name", "")),
            folder=folder,
            photo=folder / str(data["photo"]),
            bundled=bundled,
            created=str(data.get("created", "")),
            created_by=str(data.get("created_by", "")),
            change=str(data.get("change", "")),
            revocation=revocation,
            idle_video=folder / str(data["idle_video"]) if data.get("idle_video") else None,
            recording=folder / str(data["recording"]) if data.get("recording") else None,
            mouth_bank=folder / str(data["mouth_bank"]) if data.get("mouth_bank") else None,
        )
    except (KeyError, ValueError) as exc:
        raise AvatarError(f"avatar folder {folder} has a broken avatar.yaml ({exc}); fix or re-enroll it") from exc


class AvatarLibrary:
    def __init__(self, root: Path, bundled: Path | None = BUNDLED) -> None:
        self.root = Path(root)
        self.bundled = Path(bundled) if bundled is not None else None

    @classmethod
    def default(cls, home: Path) -> AvatarLibrary:
        """The library under a DHF home (`<home>/avatars`) plus the bundled sample."""
        return cls(Path(home) / "avatars", BUNDLED)

    @classmethod
    def from_settings(cls, paths: PathSettings) -> AvatarLibrary:
        """The configured library root (`paths.library`, default `<home>/avatars`) plus the bundled sample."""
        return cls(paths.avatars, BUNDLED)

    # -- reading ---------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        found = set()
        if self.root.is_dir():
            found |= {p.parent.name for p in self.root.glob("*/current")}
        if self.bundled is not None and self.bundled.is_dir():
            found |= {p.parent.name for p in self.bundled.glob("*/avatar.yaml")}
        return sorted(found)

    def _folder(self, avatar_id: str) -> Path:
        return self.root / valid_id(avatar_id)

    def _bundled_folder(self, avatar_id: str) -> Path | None:
        if self.bundled is None:
            return None
        folder = self.bundled / avatar_id
        return folder if (folder / "avatar.yaml").is_file() else None

    def revocation(self, avatar_id: str) -> Revocation | None:
        path = self._folder(avatar_id) / "revocation.yaml"
        if not path.is_file():
            return None
        data = _read_yaml(path)
        return Revocation(int(data["through_version"]), str(data["time"]), str(data["by"]), str(data.get("reason", "")))

    def current_version(self, avatar_id: str) -> int:
        path = self._folder(avatar_id) / "current"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise AvatarError(f"{path} is missing or broken; run `dhf avatar rollback {avatar_id} --to N`") from exc

    def version_numbers(self, avatar_id: str) -> list[int]:
        folder = self._folder(avatar_id) / "versions"
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []

    def get(self, avatar_id: str, version: int | None = None) -> Avatar:
        folder = self._folder(avatar_id)
        if (folder / "current").is_file():
            number = version if version is not None else self.current_version(avatar_id)
            path = folder / "versions" / str(number)
            if not (path / "avatar.yaml").is_file():
                known = ", ".join(map(str, self.version_numbers(avatar_id)))
                raise AvatarError(f"avatar '{avatar_id}' has no version {number} (versions: {known})")
            return _load_version(path, revocation=self.revocation(avatar_id))
        bundled = self._bundled_folder(avatar_id)
        if bundled is not None and version in (None, 1):
            return _load_version(bundled, bundled=True)
        known = ", ".join(self.ids()) or "none"
        raise AvatarError(f"unknown avatar '{avatar_id}' (known: {known}); enroll it with `dhf avatar add`")

    def versions(self, avatar_id: str) -> list[Avatar]:
        if not (self._folder(avatar_id) / "current").is_file():
            return [self.get(avatar_id)]
        return [self.get(avatar_id, number) for number in self.version_numbers(avatar_id)]

    # -- writing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, avatar_id: str) -> Iterator[Path]:
        folder = self._folder(avatar_id)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write_version(
        self,
        avatar_id: str,
        files: dict[str, Path | bytes | str],
        meta: dict[str, object],
        user: str,
        change: str,
    ) -> Avatar:
        """Create the next immutable version from `files` (name → source path or content) and make it
        current. `meta` must name the photo file; the folder appears atomically or not at all."""
        if self._bundled_folder(avatar_id) is not None:
            raise EnrollmentError(f"'{avatar_id}' is a bundled avatar; enroll under another id")
        with self._locked(avatar_id) as folder:
            versions = folder / "versions"
            versions.mkdir(exist_ok=True)
            number = max(self.version_numbers(avatar_id), default=0) + 1
            staging = Path(tempfile.mkdtemp(prefix=f".v{number}-", dir=versions))
            try:
                for name, source in files.items():
                    target = staging / name
                    if isinstance(source, Path):
                        shutil.copyfile(source, target)
                    else:
                        target.write_bytes(source if isinstance(source, bytes) else source.encode("utf-8"))
                record = {
                    "id": avatar_id,
                    "version": number,
                    **meta,
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "created_by": user,
                    "change": change,
                }
                (staging / "avatar.yaml").write_text(yaml.safe_dump(record, allow_unicode=True, sort_keys=False))
                for path in staging.iterdir():
                    path.chmod(0o444)  # versions are immutable
                staging.chmod(0o755)
                os.replace(staging, versions / str(number))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            write_text_atomic(folder / "current", f"{number}\n")
        return self.get(avatar_id, number)

    def rollback(self, avatar_id: str, to_version: int) -> Avatar:
        """Make an existing version current again (a revoked one cannot be)."""
        if not (self._folder(avatar_id) / "current").is_file():
            raise AvatarError(f"avatar '{avatar_id}' has no enrolled versions to roll back (bundled or unknown)")
        target = self.get(avatar_id, to_version)
        if target.revoked:
            raise AvatarError(
                f"avatar '{avatar_id}' v{to_version} was revoked on {target.revocation.time}; it cannot be made "
                "current again (enroll a new version with a new consent)"
            )
        with self._locked(avatar_id) as folder:
            write_text_atomic(folder / "current", f"{to_version}\n")
        return self.get(avatar_id)

    def revoke(self, avatar_id: str, user: str, reason: str) -> Avatar:
        """Withdraw authorization for every existing version: a new version carries the revoked
        license (so `show` says so), and the revocation marker refuses all versions up to it."""
        current = self.get(avatar_id)
        if current.bundled:
            raise AvatarError(f"'{avatar_id}' is a bundled avatar; it cannot be revoked")
        license_data = _read_yaml(current.folder / "license.yaml")
        license_data["revoked"] = True
        files: dict[str, Path | bytes | str] = {
            name: current.folder / name
            for name in os.listdir(current.folder)
            if name not in ("avatar.yaml", "license.yaml")
        }
        files["license.yaml"] = yaml.safe_dump(license_data, allow_unicode=True, sort_keys=False)
        meta = {"name": current.name, "photo": current.photo.name}
        for key in ("idle_video", "recording", "mouth_bank"):
            if getattr(current, key) is not None:
                meta[key] = getattr(current, key).name
        # The marker goes first and covers the version about to be written: if anything fails after
        # it, every existing version is already refused (fail closed), never the other way round.
        marker = {
            "through_version": max(self.version_numbers(avatar_id), default=0) + 1,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "by": user,
            "reason": reason,
        }
        marker_path = self._folder(avatar_id) / "revocation.yaml"
        write_text_atomic(marker_path, yaml.safe_dump(marker, sort_keys=False))
        revoked = self.write_version(avatar_id, files, meta, user, f"revoked: {reason}" if reason else "revoked")
        if revoked.version > marker["through_version"]:  # a concurrent change slipped in: widen the marker
            marker["through_version"] = revoked.version
            write_text_atomic(marker_path, yaml.safe_dump(marker, sort_keys=False))
        return self.get(avatar_id)
