"""The avatar library's one analysis per avatar version: computed once, cached, read by all.

A render's engine (`pipeline.stages.avatar_stage`), each chunk of a long render and the quality
monitors (`quality.inline.monitor_setup`) all ask `avatar_analysis` for the same avatar; the first
asker analyses the photo and stores the result under the DHF cache, everybody after loads it.
The key names everything the result depends on — the avatar version and its photo's bytes, the
enrolled identity, the face-analysis, identity and matte models, the matte chosen and the analysis
version — so a new version, a changed photo or model, or a new format is analysed afresh.
"""

from __future__ import annotations

import logging
from pathlib import Path

from avatars.errors import AvatarPhotoError
from avatars.library import Avatar
from config import Settings
from config.files import content_hash, file_sha256
from vision.analysis import DETECTOR_MODEL, LANDMARKER_MODEL, FaceAnalyser, read_image
from vision.avatar_analysis import ANALYSIS_VERSION, WORK_SIZE, AnalysisFormatError, AvatarAnalysis, analyse_photo
from vision.identity import EMBEDDING_MODEL, IdentityEmbedder
from vision.matte import U2NETP_MODEL, matte_choice, matte_for
from vision.models import ModelRegistry

ANALYSIS_MODELS = (DETECTOR_MODEL, LANDMARKER_MODEL, EMBEDDING_MODEL)  # what reads the photo (the matte apart)

log = logging.getLogger(__name__)


def analysis_path(avatar: Avatar, settings: Settings) -> Path:
    """Where the analysis of `avatar` under `settings` is cached (the file may not exist yet)."""
    registry = ModelRegistry(settings.paths.models)
    matte = matte_choice(settings.matte.model, registry)
    matte_models = (U2NETP_MODEL,) if matte == "u2netp" else ()
    enrolled = avatar.enrollment_file
    key = content_hash(
        {
            "avatar": avatar.avatar_id,
            "version": avatar.version,
            "photo": avatar.photo_sha256(),
            "enrolled": file_sha256(enrolled) if enrolled.is_file() else None,
            "work": WORK_SIZE,
            "models": {name: registry.spec(name).sha256 for name in ANALYSIS_MODELS},
            "analysis": ANALYSIS_VERSION,
            "matte": {matte: {name: registry.spec(name).sha256 for name in matte_models}},
        }
    )
    return settings.paths.cache / "avatars" / f"{avatar.avatar_id}-v{avatar.version}-{key}.npz"


def avatar_analysis(avatar: Avatar, settings: Settings) -> AvatarAnalysis:
    """The analysis of `avatar`'s photo: loaded from the cache, or computed and cached."""
    path = analysis_path(avatar, settings)
    if path.is_file():
        try:
            return AvatarAnalysis.load(path)
        except AnalysisFormatError as exc:  # damaged: analyse again and replace it
            log.warning("%s; analysing the avatar photo again", exc)
    analysis = analyse_avatar(avatar, settings)
    analysis.save(path)
    return analysis


def analyse_avatar(avatar: Avatar, settings: Settings) -> AvatarAnalysis:
    """Detect and fit the one face of the photo, refuse one too small to animate, then analyse it."""
    registry = ModelRegistry(settings.paths.models)
    image = read_image(avatar.photo, settings.images.max_pixels)
    analyser = FaceAnalyser(registry, settings.face.detector_min_score)
    face = analyser.single_face(image, source=f"avatar '{avatar.avatar_id}' photo {avatar.photo.name}")
    if face.width < settings.face.min_face_px:
        raise AvatarPhotoError(
            f"the face in avatar '{avatar.avatar_id}' is {face.width:.0f} px wide, below "
            f"{settings.face.min_face_px} px; use a larger photo"
        )
    enrolled = avatar.enrolled_embedding()
    embedder = IdentityEmbedder(registry) if enrolled is None else None
    matte = matte_for(matte_choice(settings.matte.model, registry), registry)
    return analyse_photo(image, face, matte, embedder, enrolled)
