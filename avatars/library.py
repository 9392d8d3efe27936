"""Find avatars by id: the user's library first (`<home>/avatars`), then the bundled sample.

An avatar folder holds `avatar.yaml` (id, version, photo), the photo and `license.yaml`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from avatars.errors import AvatarError
from avatars.license import License, load_license
from config.files import file_sha256

BUNDLED = Path(__file__).resolve().parent
AVATAR_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Avatar:
    avatar_id: str
    version: int
    name: str
    folder: Path
    photo: Path

    def license(self) -> License:
        return load_license(self.folder / "license.yaml")

    def photo_sha256(self) -> str:
        return file_sha256(self.photo)


class AvatarLibrary:
    def __init__(self, roots: list[Path]) -> None:
        self.roots = [Path(r) for r in roots]

    @classmethod
    def default(cls, home: Path) -> AvatarLibrary:
        return cls([Path(home) / "avatars", BUNDLED])

    def ids(self) -> list[str]:
        found = set()
        for root in self.roots:
            if root.is_dir():
                found |= {p.parent.name for p in root.glob("*/avatar.yaml")}
        return sorted(found)

    def get(self, avatar_id: str) -> Avatar:
        if not AVATAR_ID.match(avatar_id or ""):
            raise AvatarError(f"invalid avatar id '{avatar_id}': use lowercase letters, digits, '-' or '_'")
        for root in self.roots:
            folder = root / avatar_id
            if (folder / "avatar.yaml").is_file():
                return self._load(folder)
        known = ", ".join(self.ids()) or "none"
        raise AvatarError(f"unknown avatar '{avatar_id}' (known: {known}); enroll it with `dhf avatar add`")

    @staticmethod
    def _load(folder: Path) -> Avatar:
        try:
            data = yaml.safe_load((folder / "avatar.yaml").read_text(encoding="utf-8")) or {}
            return Avatar(
                avatar_id=str(data["id"]),
                version=int(data.get("version", 1)),
                name=str(data.get("name", "")),
                folder=folder,
                photo=folder / str(data["photo"]),
            )
        except (KeyError, ValueError, yaml.YAMLError) as exc:
            raise AvatarError(f"avatar folder {folder} has a broken avatar.yaml ({exc}); fix or re-enroll it") from exc
