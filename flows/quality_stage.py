"""The quality stage of every render, and `dhf evaluate`'s reference data for an avatar.

A render whose output breaks a threshold of `config/quality.yaml` is not published: the staged
video becomes `<name>.rejected.mp4` (report: `<name>.rejected.report.json`). When
`quality.fallback` says so, a safer version is rendered and, if it passes, published under the
requested name. Either way the pipeline then raises `QualityGateError`, so the CLI exits 4, the
audit entry says "failed" with the reason, and Prefect marks the flow failed in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatars.library import Avatar
from config import Settings
from fusion.analysis import FaceAnalyser, read_image
from fusion.errors import FusionError
from fusion.identity import IdentityEmbedder
from fusion.models import ModelRegistry
from fusion.quality import QualityReport, evaluate_video, skin_lab

BILABIAL_VISEME = "A"


class QualityGateError(FusionError):
    """A render broke a quality threshold (the report and the audit log say which)."""

    def __init__(self, message: str, report_path: Path | None = None) -> None:
        super().__init__(message)
        self.report_path = report_path


@dataclass(frozen=True)
class AvatarReference:
    """What an output is compared with: the enrolled identity and the photo's skin colour."""

    embedding: np.ndarray
    skin_lab: np.ndarray


def avatar_reference(avatar: Avatar, analyser: FaceAnalyser, embedder: IdentityEmbedder) -> AvatarReference:
    image = read_image(avatar.photo)
    face = analyser.single_face(image, source=f"avatar '{avatar.avatar_id}' photo")
    enrolled = avatar.folder / "enrollment.npz"
    embedding = None
    if enrolled.is_file():
        with np.load(enrolled) as data:
            embedding = data["embedding"] if "embedding" in data.files else None
    if embedding is None:  # the bundled sample is not enrolled through `dhf avatar add`
        embedding = embedder.embed(image, face.landmarks)
    return AvatarReference(embedding=embedding, skin_lab=skin_lab(image, face.landmarks))


def evaluate_output(
    video: Path,
    avatar: Avatar | None,
    settings: Settings,
    bilabial_spans: list[tuple[float, float]] | None = None,
    still: bool = False,
) -> QualityReport:
    """Evaluate a video against the thresholds (a still fallback is exempt from lip-sync)."""
    registry = ModelRegistry(settings.paths.models)
    analyser = FaceAnalyser(registry, settings.face.detector_min_score)
    embedder = IdentityEmbedder(registry) if avatar is not None else None
    reference = avatar_reference(avatar, analyser, embedder) if avatar is not None else None
    return evaluate_video(
        video,
        analyser,
        settings.quality,
        embedder,
        reference.embedding if reference else None,
        reference.skin_lab if reference else None,
        None if still else bilabial_spans,
        measure_lipsync=not still,
    )


def bilabial_spans(visemes) -> list[tuple[float, float]]:
    """Closure spans of a synthetic driver (where the lips must be shut)."""
    return [tuple(span) for span in getattr(visemes, "closures", [])] if visemes is not None else []


def rejected_path(output: Path, tag: str = "rejected") -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.{tag}{output.suffix}")
