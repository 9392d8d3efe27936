"""Personal avatars: enrollment from a consented speaking recording, and its mouth bank.

`dhf avatar add REC.mp4 --id X --license L --speaking` measures everything before anything is
written, and refuses with one line naming the value and its threshold (`enrollment.speaking` in
config/default.yaml), in this order: length, speech audio present, a face in (almost) every frame,
face size, frontal, steady, lighting stable, viseme coverage, then the photo checks on the
reference frame, then one person throughout: every bank frame's identity against the reference
frame's and no second face in any frame (avatars/recording_identity.py). The licence and consent
rules of photo avatars apply unchanged (the same functions run). The version folder stores the
recording, the reference frame (`photo.png`, from the longest quiet stretch), that stretch as the
idle loop (`idle.mp4`: the person's own silent face is the moving base) and the mouth bank
(`mouth_bank.npz`, see fusion/mouth_bank.py).

Viseme labels come from the lip shape (`fusion.mouth_bank.viseme_labels`), not from aligning the
audio to the read script: the coverage check asks "did the recording show every mouth shape in
enough frames", which the shape answers directly; aligning would add a dependency on the script's
exact wording and on a DTW whose errors the lip shape does not have.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from avatars.enrollment import (
    EnrolledPhoto,
    EnrollmentResult,
    _prepare_license,
    _refuse_revoked_consent,
    _thumbnail,
    check_image,
    consent_name,
    enrollment_record,
    head_pose,
)
from avatars.errors import EnrollmentError
from avatars.library import AvatarLibrary, valid_id
from avatars.recording_identity import check_whole_recording
from config import Settings
from config.files import file_sha256
from config.settings import SpeakingSettings
from driver_synth.driver_video import track_from_features
from fusion.mouth_bank import (
    VISEME_CLASSES,
    MouthBank,
    canonical_template,
    encode_crop,
    extract_unit,
    mesh_points,
    target_features,
    unit_mesh,
    viseme_labels,
)
from media.errors import MediaError
from media.video import ffmpeg_binary, probe, read_audio_mono, read_frames
from vision.analysis import Face, FaceAnalyser
from vision.face_features import face_features
from vision.identity import IdentityEmbedder, identity_distance
from vision.models import ModelRegistry

AUDIO_RATE = 16000
WINDOW_S = 0.05


@dataclass
class RecordingAnalysis:
    """What one pass over a speaking recording measured (and the bank it built)."""

    duration: float
    fps: int
    frames: int
    bank: MouthBank
    speech_ratio: float
    quiet: tuple[int, int]  # the longest quiet stretch, in frames [start, stop)
    reference: np.ndarray | None  # the frame in the middle of the quiet stretch
    reference_face: Face | None
    reference_frame: int  # its index
    landmarks: np.ndarray  # (units, 468, 3) the mesh each bank unit was cut with (the identity pass embeds it)
    missing_ratio: float
    face_px: float
    pose_deg: tuple[float, float, float]
    motion: float
    light_drift: float
    stats: dict[str, float] = field(default_factory=dict)


def speech_activity(samples: np.ndarray, threshold_dbfs: float) -> np.ndarray:
    """Per 50 ms window: louder than `threshold_dbfs` (speech) or not."""
    size = int(AUDIO_RATE * WINDOW_S)
    count = len(samples) // size
    if count == 0:
        return np.zeros(0, bool)
    rms = np.sqrt(np.mean(samples[: count * size].reshape(count, size).astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9)) > threshold_dbfs


def longest_quiet(active: np.ndarray, fps: int, frames: int) -> tuple[int, int]:
    """The longest run of quiet windows, in video frames [start, stop) (shrunk by 2 frames at each end,
    so the lips are settled)."""
    quiet = ~active
    best, start = (0, 0), None
    for index, value in enumerate(np.append(quiet, False)):
        if value and start is None:
            start = index
        elif not value and start is not None:
            if index - start > best[1] - best[0]:
                best = (start, index)
            start = None
    first = int(np.ceil(best[0] * WINDOW_S * fps)) + 2
    last = min(int(best[1] * WINDOW_S * fps) - 2, frames)
    return (first, max(first, last))


def analyse_recording(
    path: Path,
    analyser: FaceAnalyser,
    settings: Settings,
    on_frame: Callable[[int, int], None] | None = None,
) -> RecordingAnalysis:
    """One streamed pass: every frame's face, its mouth unit and the measurements the checks need."""
    limits = settings.enrollment.speaking
    fps = settings.video.fps
    info = probe(path)
    samples = read_audio_mono(path, AUDIO_RATE)
    active = speech_activity(samples, limits.speech_dbfs)
    expected = max(1, round(info.duration * fps))
    quiet = longest_quiet(active, fps, expected)
    reference_index = (quiet[0] + quiet[1]) // 2
    crops, lips, kept, features, meshes, unit_poses, unit_meshes = [], [], [], [], [], [], []
    widths, centres, poses, light = [], [], [], []
    template, previous, reference, reference_face, reference_frame = None, None, None, None, -1
    indices = None
    count = 0
    for index, frame in enumerate(read_frames(path, fps=fps)):
        count += 1
        face = analyser.track(frame, previous)
        previous = face
        if on_frame is not None:
            on_frame(index + 1, expected)
        if face is None:
            features.append(None)
            continue
        lm = face.landmarks
        if template is None:
            template = canonical_template(lm)
            indices = mesh_points(lm, template)
        crop, points = extract_unit(frame, lm, template)
        crops.append(encode_crop(crop))
        lips.append(points.astype(np.float32))
        kept.append(index)
        meshes.append(lm.astype(np.float32))
        unit_meshes.append(unit_mesh(lm, template, indices))
        measured = face_features(lm, frame)
        features.append(measured)
        unit_poses.append((measured.yaw, measured.pitch))
        widths.append(face.width)
        centres.append(lm[:, :2].mean(0))
        poses.append(head_pose(lm))
        x0, y0 = np.maximum(lm[:, :2].min(0).astype(int), 0)
        x1, y1 = lm[:, :2].max(0).astype(int)
        light.append(float(cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).mean()) if x1 > x0 and y1 > y0 else 0)
        if index == reference_index or (reference is None and index >= reference_index):
            reference, reference_face, reference_frame = frame.copy(), face, index
    missing = 1.0 - len(kept) / max(count, 1)
    if not kept:
        raise EnrollmentError(f"{path.name}: no face found in any frame; film one frontal face, filling the frame")
    track = track_from_features(features, fps, settings.driver_video.model_copy(update={"max_missing_ratio": 1.0}))
    channels = target_features(track.channels)[np.array(kept)]
    bank = MouthBank(
        crops=crops,
        lips=np.stack(lips),
        features=channels,
        labels=viseme_labels(channels),
        frames=np.array(kept, np.int32),
        template=template,
        fps=fps,
        pose=np.array(unit_poses, np.float32),
        mesh=np.stack(unit_meshes),
        mesh_index=indices,
    )
    width = float(np.median(widths))
    centre = np.median(np.stack(centres), axis=0)
    drift = np.linalg.norm(np.stack(centres) - centre, axis=1) / max(width, 1.0)
    light_values = np.array(light)
    return RecordingAnalysis(
        duration=info.duration,
        fps=fps,
        frames=count,
        bank=bank,
        speech_ratio=float(active.mean()) if len(active) else 0.0,
        quiet=quiet,
        reference=reference,
        reference_face=reference_face,
        reference_frame=reference_frame,
        landmarks=np.stack(meshes),
        missing_ratio=missing,
        face_px=width,
        pose_deg=tuple(float(v) for v in np.median(np.array(poses), axis=0)),
        motion=float(np.percentile(drift, 99)),
        light_drift=float(
            (np.percentile(light_values, 95) - np.percentile(light_values, 5)) / max(np.median(light_values), 1.0)
        ),
    )


def check_length(name: str, duration: float, limits: SpeakingSettings) -> None:
    if not limits.min_seconds <= duration <= limits.max_seconds:
        raise EnrollmentError(
            f"{name}: the recording is {duration:.1f} s long, outside "
            f"{limits.min_seconds:.0f}-{limits.max_seconds:.0f} s; "
            "record the enrollment script once (docs/recording-guide.md)"
        )


def check_recording(name: str, rec: RecordingAnalysis, limits: SpeakingSettings) -> None:
    """The measured recording against the limits; EnrollmentError names the first failure."""
    if rec.speech_ratio < limits.min_speech_ratio:
        raise EnrollmentError(
            f"{name}: speech is heard in {rec.speech_ratio:.0%} of the recording "
            f"(minimum {limits.min_speech_ratio:.0%} above {limits.speech_dbfs:.0f} dBFS); "
            "record with the microphone on, reading the script aloud"
        )
    if rec.missing_ratio > limits.max_missing_ratio:
        raise EnrollmentError(
            f"{name}: no face in {rec.missing_ratio:.0%} of the frames (limit {limits.max_missing_ratio:.0%}); "
            "stay in view, facing the camera, the whole time"
        )
    if rec.face_px < limits.min_face_px:
        raise EnrollmentError(
            f"{name}: the face is {rec.face_px:.0f} px across, below the {limits.min_face_px} px minimum; "
            "sit closer or record at a higher resolution"
        )
    for axis, value in zip(("turned sideways (yaw)", "tilted up or down (pitch)", "tilted sideways (roll)"),
                           rec.pose_deg, strict=True):  # fmt: skip
        if abs(value) > limits.max_head_deg:
            raise EnrollmentError(
                f"{name}: the head is {axis} by {abs(value):.0f}°, over the {limits.max_head_deg:.0f}° limit; "
                "look into the camera while reading"
            )
    if rec.motion > limits.max_motion:
        raise EnrollmentError(
            f"{name}: the face moves {rec.motion:.0%} of its width (limit {limits.max_motion:.0%}); "
            "put the camera on a tripod and keep the head still"
        )
    if rec.light_drift > limits.max_light_drift:
        raise EnrollmentError(
            f"{name}: the light on the face changes by {rec.light_drift:.0%} (limit {limits.max_light_drift:.0%}); "
            "record under steady light (no window sun, no auto-exposure)"
        )
    quiet_s = (rec.quiet[1] - rec.quiet[0]) / rec.fps
    if quiet_s < limits.min_idle_seconds:
        raise EnrollmentError(
            f"{name}: the longest quiet stretch is {quiet_s:.1f} s (minimum {limits.min_idle_seconds:.1f} s); "
            "sit still with the mouth closed for 3 s before reading"
        )
    coverage = rec.bank.coverage()
    scarce = [f"{k} {v}" for k, v in coverage.items() if v < limits.min_viseme_frames]
    if scarce:
        raise EnrollmentError(
            f"{name}: viseme coverage too low ({', '.join(scarce)} frames; each class needs "
            f"{limits.min_viseme_frames}); read the whole enrollment script (docs/enrollment-scripts/)"
        )


def idle_clip(path: Path, quiet: tuple[int, int], fps: int, limits: SpeakingSettings) -> bytes:
    """The quiet stretch (at most `idle_seconds`) as an MP4 without audio: the idle loop."""
    start = quiet[0] / fps
    length = min((quiet[1] - quiet[0]) / fps, limits.idle_seconds)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "idle.mp4"
        command = [ffmpeg_binary(), "-v", "error", "-y", "-ss", f"{start:.3f}", "-i", str(path),
                   "-t", f"{length:.3f}", "-an", "-r", str(fps), "-c:v", "libx264", "-crf", "14",
                   "-pix_fmt", "yuv420p", str(target)]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not target.is_file():
            raise MediaError(f"could not cut the idle loop from {path.name}: {result.stderr.strip()[-200:]}")
        return target.read_bytes()


def enroll_speaking(
    library: AvatarLibrary,
    avatar_id: str,
    license_path: Path,
    settings: Settings,
    user: str,
    recording: Path,
    name: str = "",
    on_frame: Callable[[int, int], None] | None = None,
) -> EnrollmentResult:
    """Check the recording and the licence, build the mouth bank, write a new immutable version."""
    valid_id(avatar_id)
    recording = Path(recording)
    existing = library.get(avatar_id) if avatar_id in library.ids() else None
    if existing is not None and existing.bundled:
        raise EnrollmentError(f"'{avatar_id}' is a bundled avatar; enroll under another id")
    if not recording.is_file():
        raise EnrollmentError(f"recording not found: {recording}; check the path")
    lic, license_data = _prepare_license(license_path, avatar_id)
    _refuse_revoked_consent(library, avatar_id, lic)
    limits = settings.enrollment.speaking
    try:
        info = probe(recording)
    except MediaError as exc:
        raise EnrollmentError(str(exc)) from exc
    check_length(recording.name, info.duration, limits)
    if info.audio_codec is None:
        raise EnrollmentError(f"{recording.name} has no audio track; record with the microphone on")
    registry = ModelRegistry(settings.paths.models)
    analyser = FaceAnalyser(registry, settings.face.detector_min_score)
    rec = analyse_recording(recording, analyser, settings, on_frame)
    check_recording(recording.name, rec, limits)
    if rec.reference is None or rec.reference_face is None:
        raise EnrollmentError(f"{recording.name}: no face in the quiet stretch; sit still facing the camera first")
    checked: EnrolledPhoto = check_image(
        rec.reference, f"{recording.name} (quiet frame)", analyser, settings.enrollment
    )
    embedder = IdentityEmbedder(registry)
    embedding = embedder.embed(checked.image, checked.face.landmarks)
    tracked = dict(zip(rec.bank.frames.tolist(), rec.landmarks, strict=True))
    identity = check_whole_recording(recording, recording.name, rec.fps, tracked, embedding, rec.reference_frame,
                                     analyser, embedder, limits)  # fmt: skip
    warnings = []
    for other_id in library.ids():
        other = library.get(other_id).enrolled_embedding() if other_id != avatar_id else None
        if other is not None and identity_distance(embedding, other) < settings.enrollment.same_person_distance:
            warnings.append(f"this face matches avatar '{other_id}'; it may be the same person under another id")
    bank_bytes = rec.bank.to_bytes()
    minutes = max(rec.duration / 60.0, 1e-6)
    enrollment = enrollment_record(checked, embedding)
    checks = {
        **checked.checks.as_dict(),
        "recording_seconds": round(rec.duration, 2),
        "recording_face_px": round(rec.face_px, 1),
        "recording_pose_deg": [round(v, 1) for v in rec.pose_deg],
        "recording_motion": round(rec.motion, 4),
        "recording_light_drift": round(rec.light_drift, 4),
        "speech_ratio": round(rec.speech_ratio, 3),
        "viseme_coverage": rec.bank.coverage(),
        "mouth_units": len(rec.bank),
        "mouth_bank_mb_per_minute": round(len(bank_bytes) / 2**20 / minutes, 2),
        "idle_seconds": round((rec.quiet[1] - rec.quiet[0]) / rec.fps, 2),
        **identity.as_dict(rec.fps),
        "warnings": warnings,
    }
    suffix = recording.suffix.lower() or ".mp4"
    files: dict[str, Path | bytes | str] = {
        "photo.png": cv2.imencode(".png", checked.image)[1].tobytes(),
        "license.yaml": yaml.safe_dump(license_data, allow_unicode=True, sort_keys=False),
        consent_name(lic): lic.consent_document,
        "enrollment.npz": enrollment,
        "checks.json": json.dumps(checks, indent=2),
        "thumbnail.jpg": _thumbnail(checked.image, checked.face, settings.enrollment.thumbnail_px),
        f"recording{suffix}": recording,
        "idle.mp4": idle_clip(recording, rec.quiet, rec.fps, limits),
        "mouth_bank.npz": bank_bytes,
    }
    meta: dict[str, object] = {
        "name": name or (existing.name if existing else avatar_id),
        "photo": "photo.png",
        "source_sha256": file_sha256(recording),
        "license_id": lic.license_id,
        "idle_video": "idle.mp4",
        "recording": f"recording{suffix}",
        "mouth_bank": "mouth_bank.npz",
    }
    change = "enrolled (speaking recording)" if existing is None else "new speaking recording and license"
    avatar = library.write_version(avatar_id, files, meta, user, change)
    return EnrollmentResult(avatar, checked.checks, tuple(warnings))


__all__ = ["VISEME_CLASSES", "analyse_recording", "check_recording", "enroll_speaking"]
