"""Enrollment checks for an avatar photo: everything is measured before anything is written.

Each check refuses with its own one-line message that names the measured value, the threshold
(`enrollment:` in config/default.yaml) and what to do. Order matters: later checks need a single,
large enough face to measure anything meaningful.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from avatars.errors import EnrollmentError, LicenseError
from avatars.library import Avatar, AvatarLibrary, valid_id
from avatars.license import License, check_license_record, load_license
from config import EnrollmentSettings, Settings
from config.files import file_sha256
from media.errors import MediaError
from media.video import probe, read_frames
from vision.analysis import Face, FaceAnalyser, read_image
from vision.errors import FaceNotFoundError, MultipleFacesError
from vision.face_features import eye_openness, face_features
from vision.identity import IdentityEmbedder, identity_distance
from vision.models import ModelRegistry

SHARPNESS_WIDTH = 160  # faces are compared for sharpness at this width, so big photos are not favoured


@dataclass(frozen=True)
class PhotoChecks:
    """What enrollment measured (stored with the version, shown by `dhf avatar show`)."""

    width: int
    height: int
    face_px: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    eye_openness: float
    sharpness: float
    luminance: float
    clipped_ratio: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EnrolledPhoto:
    image: np.ndarray
    face: Face
    checks: PhotoChecks


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the mesh: yaw across the cheeks and pitch from forehead to
    chin use the mesh's depth; roll is the eye line's angle in the image."""
    features = face_features(landmarks)
    vertical = landmarks[152] - landmarks[10]  # chin minus forehead
    pitch = float(np.degrees(np.arctan2(-vertical[2], vertical[1])))
    return features.yaw, pitch, features.roll


def _face_box(face: Face, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    lm = face.landmarks[:, :2]
    x0, y0 = np.maximum(np.floor(lm.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(lm.max(0)).astype(int) + 1, [shape[1], shape[0]])
    return int(x0), int(y0), int(x1), int(y1)


def sharpness(grey_face: np.ndarray) -> float:
    """Variance of the Laplacian of the face scaled down to at most 160 px wide."""
    scale = min(1.0, SHARPNESS_WIDTH / max(grey_face.shape[1], 1))
    small = cv2.resize(grey_face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey_face
    return float(cv2.Laplacian(small, cv2.CV_64F).var())


def measure_photo(image: np.ndarray, face: Face) -> PhotoChecks:
    x0, y0, x1, y1 = _face_box(face, image.shape)
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    yaw, pitch, roll = head_pose(face.landmarks)
    clipped = float(np.mean((grey <= 5) | (grey >= 250))) if grey.size else 1.0
    return PhotoChecks(
        width=image.shape[1],
        height=image.shape[0],
        face_px=face.width,
        yaw_deg=yaw,
        pitch_deg=pitch,
        roll_deg=roll,
        eye_openness=eye_openness(image, face.landmarks),
        sharpness=sharpness(grey),
        luminance=float(grey.mean()) if grey.size else 0.0,
        clipped_ratio=clipped,
    )


def check_photo(path: Path, analyser: FaceAnalyser, limits: EnrollmentSettings, max_pixels: int) -> EnrolledPhoto:
    """Read, analyse and check a photo; EnrollmentError names the first failed check. A photo above
    `max_pixels` (`images.max_pixels`) is refused from its header, before it is decoded."""
    try:
        image = read_image(path, max_pixels)
    except MediaError as exc:
        raise EnrollmentError(str(exc)) from exc
    return check_image(image, Path(path).name, analyser, limits)


def check_image(image: np.ndarray, name: str, analyser: FaceAnalyser, limits: EnrollmentSettings) -> EnrolledPhoto:
    try:
        face = analyser.single_face(image, source=name)
    except (FaceNotFoundError, MultipleFacesError) as exc:
        raise EnrollmentError(str(exc)) from exc
    checks = measure_photo(image, face)
    if checks.face_px < limits.min_face_px:
        raise EnrollmentError(
            f"{name}: the face is {checks.face_px:.0f} px across, below the {limits.min_face_px} px minimum; "
            "use a larger or closer photo"
        )
    for axis, value, limit in (
        ("turned sideways (yaw)", checks.yaw_deg, limits.max_yaw_deg),
        ("tilted up or down (pitch)", checks.pitch_deg, limits.max_pitch_deg),
        ("tilted sideways (roll)", checks.roll_deg, limits.max_roll_deg),
    ):
        if abs(value) > limit:
            raise EnrollmentError(
                f"{name}: the head is {axis} by {abs(value):.0f}°, over the {limit:.0f}° limit; "
                "use a frontal photo looking into the camera"
            )
    low, high = limits.exposure_range
    if not low <= checks.luminance <= high or checks.clipped_ratio > limits.max_clipped_ratio:
        state = "under-exposed (too dark)" if checks.luminance < (low + high) / 2 else "over-exposed (too bright)"
        raise EnrollmentError(
            f"{name}: the face is {state}: mean brightness {checks.luminance:.0f} (allowed {low:.0f}-{high:.0f}), "
            f"{checks.clipped_ratio:.0%} of it clipped; use an evenly lit photo"
        )
    if checks.sharpness < limits.min_sharpness:
        raise EnrollmentError(
            f"{name}: the face is blurred (sharpness {checks.sharpness:.0f}, minimum {limits.min_sharpness:.0f}); "
            "use a sharp, focused photo"
        )
    if not checks.eye_openness >= limits.min_eye_openness:
        raise EnrollmentError(
            f"{name}: the eyes look closed (eye openness {checks.eye_openness:.3f}, minimum "
            f"{limits.min_eye_openness}); use a photo with open eyes"
        )
    return EnrolledPhoto(image=image, face=face, checks=checks)


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
IDLE_SAMPLE_FPS = 4  # frames per second checked for a face and for steadiness


def check_idle_video(path: Path, analyser: FaceAnalyser, limits: EnrollmentSettings) -> EnrolledPhoto:
    """An idle-loop clip: its middle frame must pass every photo check (it becomes the reference the
    reenactor is built on), one face must be visible throughout, and it must stay put: the render
    reuses the reference frame's mesh for every frame of the loop."""
    name = Path(path).name
    try:
        info = probe(path)
    except MediaError as exc:
        raise EnrollmentError(str(exc)) from exc
    if info.duration > limits.max_idle_seconds:
        raise EnrollmentError(
            f"{name}: the idle loop is {info.duration:.1f} s long, over {limits.max_idle_seconds:.0f} s; "
            "trim it (a few seconds of the person sitting still)"
        )
    middle_index = max(0, round(info.duration * IDLE_SAMPLE_FPS) // 2)
    middle, centres = None, []
    for index, frame in enumerate(read_frames(path, fps=IDLE_SAMPLE_FPS)):  # streamed: one frame at a time
        face = analyser.largest_face(frame)
        if face is None:
            raise EnrollmentError(
                f"{name}: no face at {index / IDLE_SAMPLE_FPS:.2f} s; the person must stay in view all the time"
            )
        centres.append(face.landmarks[:, :2].mean(0))
        if index <= middle_index:
            middle = frame.copy()
    if middle is None:
        raise EnrollmentError(f"{name} has no readable frames; use an MP4 of the person sitting still")
    reference = check_image(middle, f"{name} (middle frame)", analyser, limits)
    centre = reference.face.landmarks[:, :2].mean(0)
    worst = max(float(np.linalg.norm(c - centre)) / reference.face.width for c in centres)
    if worst > limits.max_idle_motion:
        raise EnrollmentError(
            f"{name}: the face moves {worst:.0%} of its width in the loop (limit {limits.max_idle_motion:.0%}); "
            "use a steadier clip (camera on a tripod, person sitting still)"
        )
    return reference


@dataclass(frozen=True)
class EnrollmentResult:
    avatar: Avatar
    checks: PhotoChecks
    warnings: tuple[str, ...]


def _prepare_license(license_path: Path, avatar_id: str) -> tuple[License, dict[str, object]]:
    """Load and check the authorization before anything is written; returns it and its YAML."""
    license_path = Path(license_path)
    if not license_path.is_file():
        raise EnrollmentError(f"license file not found: {license_path}; give the signed license.yaml")
    try:
        lic = load_license(license_path)
        check_license_record(lic, avatar_id)
    except LicenseError as exc:
        raise EnrollmentError(str(exc)) from exc
    data = yaml.safe_load(license_path.read_text(encoding="utf-8"))
    data["consent_document"] = consent_name(lic)  # stored beside it in the version folder, under a fixed name
    return lic, data


def consent_name(lic: License) -> str:
    """The consent document's name inside a version folder: fixed, so it can never clash with the
    photo, the metadata or the enrollment files."""
    return f"consent{lic.consent_document.suffix.lower()[:10]}"


def _refuse_revoked_consent(library: AvatarLibrary, avatar_id: str, lic: License) -> None:
    """After a revocation, only a new consent may bring the avatar back: a license id or consent
    document used by any revoked version is refused."""
    revocation = library.revocation(avatar_id)
    if revocation is None:
        return
    for number in library.version_numbers(avatar_id):
        if number > revocation.through_version:
            continue
        old = library.get(avatar_id, number).license()
        if old.license_id == lic.license_id or old.consent_sha256 == lic.consent_sha256:
            raise EnrollmentError(
                f"avatar '{avatar_id}' was revoked on {revocation.time}; license {lic.license_id} (or its consent "
                "document) belongs to the revoked versions: a new signed consent and license are needed"
            )


def _thumbnail(image: np.ndarray, face: Face, size: int) -> bytes:
    x0, y0, x1, y1 = _face_box(face, image.shape)
    side = int(max(x1 - x0, y1 - y0) * 1.6)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    crop = image[max(cy - side // 2, 0) : cy + side // 2, max(cx - side // 2, 0) : cx + side // 2]
    ok, data = cv2.imencode(".jpg", cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return data.tobytes() if ok else b""


def enrollment_record(checked: EnrolledPhoto, embedding: np.ndarray) -> bytes:
    """`enrollment.npz` of a version: the reference face's landmarks, box and identity embedding
    (what later renders and the same-person check read instead of analysing the photo again)."""
    record = io.BytesIO()
    np.savez_compressed(
        record,
        landmarks=checked.face.landmarks.astype(np.float32),
        box=np.asarray(checked.face.detection.box, np.float32),
        embedding=embedding,
    )
    return record.getvalue()


def enroll(
    library: AvatarLibrary,
    avatar_id: str,
    license_path: Path,
    settings: Settings,
    user: str,
    photo: Path | None = None,
    name: str = "",
) -> EnrollmentResult:
    """Check photo and license, then write a new immutable version (the first one for a new id).

    Without `photo`, the current version's photo is kept (a license renewal). All checks run before
    the version folder is created, so a refusal leaves the library exactly as it was.
    """
    valid_id(avatar_id)
    existing = library.get(avatar_id) if avatar_id in library.ids() else None
    if existing is not None and existing.bundled:
        raise EnrollmentError(f"'{avatar_id}' is a bundled avatar; enroll under another id")
    if photo is None:
        if existing is None:
            raise EnrollmentError(f"avatar '{avatar_id}' is new: give its photo (dhf avatar add PHOTO --id ...)")
        photo = existing.idle_video or existing.photo
    photo = Path(photo)
    is_video = photo.suffix.lower() in VIDEO_SUFFIXES
    if not photo.is_file():
        raise EnrollmentError(f"{'video' if is_video else 'image'} not found: {photo}; check the path")
    lic, license_data = _prepare_license(license_path, avatar_id)
    _refuse_revoked_consent(library, avatar_id, lic)
    registry = ModelRegistry(settings.paths.models)
    analyser = FaceAnalyser(registry, settings.face.detector_min_score)
    if is_video:
        checked = check_idle_video(photo, analyser, settings.enrollment)
    else:
        checked = check_photo(photo, analyser, settings.enrollment, settings.images.max_pixels)
    embedding = IdentityEmbedder(registry).embed(checked.image, checked.face.landmarks)
    warnings = []
    for other_id in library.ids():
        if other_id == avatar_id:
            continue
        other = library.get(other_id).enrolled_embedding()
        if other is not None:
            distance = identity_distance(embedding, other)
            if distance < settings.enrollment.same_person_distance:
                warnings.append(
                    f"this face matches avatar '{other_id}' (identity distance {distance:.2f} < "
                    f"{settings.enrollment.same_person_distance}); it may be the same person under another id"
                )
    enrollment = enrollment_record(checked, embedding)
    if is_video:  # the checked middle frame is the reference photo; the clip is kept beside it
        photo_name = "photo.png"
        photo_source: Path | bytes = cv2.imencode(".png", checked.image)[1].tobytes()
    else:
        photo_name, photo_source = f"photo{photo.suffix.lower() or '.png'}", photo
    files: dict[str, Path | bytes | str] = {
        photo_name: photo_source,
        "license.yaml": yaml.safe_dump(license_data, allow_unicode=True, sort_keys=False),
        consent_name(lic): lic.consent_document,
        "enrollment.npz": enrollment,
        "checks.json": json.dumps({**checked.checks.as_dict(), "warnings": warnings}, indent=2),
        "thumbnail.jpg": _thumbnail(checked.image, checked.face, settings.enrollment.thumbnail_px),
    }
    if is_video:
        files[f"idle{photo.suffix.lower()}"] = photo
    same_source = existing is not None and photo in (existing.photo, existing.idle_video)
    change = "enrolled" if existing is None else ("new license" if same_source else "new photo and license")
    meta: dict[str, object] = {
        "name": name or (existing.name if existing else avatar_id),
        "photo": photo_name,
        "source_sha256": file_sha256(photo),
        "license_id": lic.license_id,
    }
    if is_video:
        meta["idle_video"] = f"idle{photo.suffix.lower()}"
    avatar = library.write_version(avatar_id, files, meta, user, change)
    return EnrollmentResult(avatar, checked.checks, tuple(warnings))
