"""Everything a render reads from an avatar's photo, analysed once: `AvatarAnalysis`.

The engine needs the face's landmarks, the portrait's framing, the work image and the person mask;
the quality monitors need the identity embedding and the skin colour the output is compared with.
All of them come from one detection and one landmark fit of the same photo, so they are taken
together (`analyse_photo`) and stored together (`save`/`load`, one versioned NPZ) — the monitors
compare against exactly the face the engine animates, and nobody analyses the photo again.
Where it is cached and under which key is the avatar library's business (avatars/analysis.py).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from config.files import atomic_path
from vision.analysis import Face
from vision.framing import Framing, apply_framing, choose_framing
from vision.matte import Matte
from vision.skin import skin_lab

ANALYSIS_VERSION = 4  # the stored format and what goes into it; its history is in docs/decisions.md
WORK_SIZE = 640  # the reenactor's square work image; the face is about a third of it


class AnalysisFormatError(ValueError):
    """A stored analysis of another version or incomplete (computed again, never trusted)."""


@dataclass(frozen=True, eq=False)
class AvatarAnalysis:
    """The analysed avatar photo (immutable; arrays are read-only).

    `landmarks` are the 468 mesh points (x, y, z) in photo pixels; `crop` and `work_size` frame the
    portrait (`framing()`); `work_image` is that square, resampled, with `work_landmarks` in its
    coordinates; `person` separates the person from the backdrop at work size (None: not separable);
    `identity` is the reference identity embedding (the enrolled one when the avatar was enrolled,
    else the photo's); `skin_lab` is the photo's cheek colour (Lab). `cache_hit` says whether it was
    loaded rather than computed; it is not stored."""

    landmarks: np.ndarray
    crop: tuple[int, int, int, int]
    work_size: int
    face_box: tuple[float, float, float, float]
    work_image: np.ndarray
    work_landmarks: np.ndarray
    person: np.ndarray | None
    identity: np.ndarray
    skin_lab: np.ndarray
    cache_hit: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("landmarks", "work_image", "work_landmarks", "person", "identity", "skin_lab"):
            value = getattr(self, name)
            if value is not None:
                value.flags.writeable = False  # shared by the engine and the monitors: nobody may edit it

    def __repr__(self) -> str:  # the arrays would drown a log line or a failing assertion
        person = "none" if self.person is None else "x".join(map(str, self.person.shape))
        return (
            f"AvatarAnalysis(crop={self.crop}, work_size={self.work_size}, person={person}, "
            f"skin_lab={np.round(self.skin_lab, 1).tolist()}, cache_hit={self.cache_hit})"
        )

    def framing(self) -> Framing:
        return Framing(crop=self.crop, work_size=self.work_size)

    def work_image_and_landmarks(self, avatar: object = None) -> tuple[np.ndarray, np.ndarray]:
        """The portrait the engine animates and its landmarks (copies: the engine may draw on them).
        `avatar` is accepted for the render path's calls and not needed: the analysis holds the image."""
        return self.work_image.copy(), self.work_landmarks.copy()

    def person_mask(self) -> np.ndarray | None:
        """The person separated from the photo's backdrop, at work size (None: not separable); a copy."""
        return None if self.person is None else self.person.copy()

    def save(self, path: Path) -> None:
        """Write atomically (a reader never sees half a file) as a compressed NPZ tagged with its version."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez_compressed(
                handle,
                version=ANALYSIS_VERSION,
                landmarks=self.landmarks,
                crop=np.array(self.crop),
                work_size=self.work_size,
                box=np.array(self.face_box),
                work_image=self.work_image,
                work_landmarks=self.work_landmarks,
                person=self.person if self.person is not None else np.zeros(1, np.uint8),
                identity=self.identity,
                skin_lab=self.skin_lab,
            )

    @classmethod
    def load(cls, path: Path) -> AvatarAnalysis:
        """Read a saved analysis; AnalysisFormatError when it is of another version, incomplete or damaged."""
        try:
            with np.load(Path(path)) as data:
                stored = {name: data[name] for name in data.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # truncated, or not an NPZ at all
            raise AnalysisFormatError(f"{path} is not a readable avatar analysis ({exc})") from exc
        if "version" not in stored or int(stored["version"]) != ANALYSIS_VERSION:
            raise AnalysisFormatError(f"{path} is not an avatar analysis of version {ANALYSIS_VERSION}")
        try:
            person = stored["person"]
            return cls(
                landmarks=stored["landmarks"],
                crop=tuple(int(v) for v in stored["crop"]),
                work_size=int(stored["work_size"]),
                face_box=tuple(float(v) for v in stored["box"]),
                work_image=stored["work_image"],
                work_landmarks=stored["work_landmarks"],
                person=person if person.size > 1 else None,
                identity=stored["identity"],
                skin_lab=stored["skin_lab"],
                cache_hit=True,
            )
        except KeyError as exc:
            raise AnalysisFormatError(f"{path} is an incomplete avatar analysis (no {exc})") from exc


class Embedder(Protocol):
    def embed(self, image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...


def reference_identity(
    image: np.ndarray, landmarks: np.ndarray, embedder: Embedder | None, enrolled: np.ndarray | None
) -> np.ndarray:
    """The identity an output is compared with: the enrolled embedding when the avatar has one (the
    bundled sample is not enrolled through `dhf avatar add`), else the photo's own."""
    if enrolled is not None:
        return np.array(enrolled)  # a copy: the analysis makes its arrays read-only
    if embedder is None:
        raise ValueError("an avatar without an enrolled embedding needs an identity embedder")
    return embedder.embed(image, landmarks)


def analyse_photo(
    image: np.ndarray,
    face: Face,
    matte: Matte,
    embedder: Embedder | None,
    enrolled: np.ndarray | None = None,
    work_size: int = WORK_SIZE,
) -> AvatarAnalysis:
    """The analysis of `image` (BGR, as read) given its one `face` (detected and fitted by the caller,
    which also decides whether the face is large enough): framing, work image, person mask, identity
    and skin colour. No files are read or written here."""
    framing = choose_framing(face.landmarks, image.shape, work_size)
    work, work_landmarks = apply_framing(image, face.landmarks, framing)
    person = matte.person(work, work_landmarks)
    return AvatarAnalysis(
        landmarks=face.landmarks.copy(),  # the caller's face stays writable
        crop=framing.crop,
        work_size=work_size,
        face_box=tuple(float(v) for v in face.detection.box),
        work_image=work,
        work_landmarks=work_landmarks,
        person=person,
        identity=reference_identity(image, face.landmarks, embedder, enrolled),
        skin_lab=skin_lab(image, face.landmarks),
    )
