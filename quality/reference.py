"""What an output is compared with: the avatar's enrolled identity and its photo's skin colour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatars.library import Avatar
from quality.color import skin_lab
from vision.analysis import FaceAnalyser, read_image
from vision.identity import IdentityEmbedder


@dataclass(frozen=True)
class AvatarReference:
    embedding: np.ndarray
    skin_lab: np.ndarray


def avatar_reference(
    avatar: Avatar, analyser: FaceAnalyser, embedder: IdentityEmbedder, max_pixels: int
) -> AvatarReference:
    image = read_image(avatar.photo, max_pixels)
    face = analyser.single_face(image, source=f"avatar '{avatar.avatar_id}' photo")
    enrolled = avatar.folder / "enrollment.npz"
    embedding = None
    if enrolled.is_file():
        with np.load(enrolled) as data:
            embedding = data["embedding"] if "embedding" in data.files else None
    if embedding is None:  # the bundled sample is not enrolled through `dhf avatar add`
        embedding = embedder.embed(image, face.landmarks)
    return AvatarReference(embedding=embedding, skin_lab=skin_lab(image, face.landmarks))
