"""What an output is compared with: the avatar's reference identity and its photo's skin colour.

Both come from the avatar's one analysis (`avatars.analysis`), the same face the engine animates, so a
render does not detect and embed the photo a second time for its monitors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.avatar_analysis import AvatarAnalysis


@dataclass(frozen=True)
class AvatarReference:
    embedding: np.ndarray
    skin_lab: np.ndarray


def reference_of(analysis: AvatarAnalysis) -> AvatarReference:
    """The monitors' reference, read from the avatar's analysis."""
    return AvatarReference(embedding=analysis.identity, skin_lab=analysis.skin_lab)
