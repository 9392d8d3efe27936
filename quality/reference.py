"""What an output is compared with: the avatar's reference identity and its photo's skin colour.

Both come from the avatar's one analysis (`avatars.analysis`), the same face the engine animates, so a
render does not detect and embed the photo a second time for its monitors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatars.library import Avatar
from vision.analysis import FaceAnalyser, read_image
from vision.avatar_analysis import AvatarAnalysis, reference_identity
from vision.identity import IdentityEmbedder
from vision.skin import skin_lab


@dataclass(frozen=True)
class AvatarReference:
    embedding: np.ndarray
    skin_lab: np.ndarray


def reference_of(analysis: AvatarAnalysis) -> AvatarReference:
    """The monitors' reference, read from the avatar's analysis."""
    return AvatarReference(embedding=analysis.identity, skin_lab=analysis.skin_lab)


def avatar_reference(
    avatar: Avatar, analyser: FaceAnalyser, embedder: IdentityEmbedder, max_pixels: int
) -> AvatarReference:
    """The reference measured from the photo without the cache, for callers that have no settings
    (`quality.evaluate.evaluate_against_avatar`); a render uses `reference_of` its analysis."""
    image = read_image(avatar.photo, max_pixels)
    face = analyser.single_face(image, source=f"avatar '{avatar.avatar_id}' photo")
    embedding = reference_identity(image, face.landmarks, embedder, avatar.enrolled_embedding())
    return AvatarReference(embedding=embedding, skin_lab=skin_lab(image, face.landmarks))
