"""The person cut-out of an avatar, shown for acceptance: one contact image.

Why a picture and not a score: whether the hair is whole and the backdrop gone is a judgement a
person makes in a second and a number makes badly. The cut-out itself is computed once per avatar
version with its face analysis (`stages.avatar_stage`, the configured matte: U²-Net-p, or GrabCut seeded
by the face and shoulders) and cached with it; this draws, side by side, the framed photo, the mask over it, and the
person on a scene's background (its own when given, else a neutral grey), at the scene's soft edge.
`dhf avatar add … --cutout PNG` writes it at enrollment; `dhf avatar cutout ID -o PNG` at any time.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from avatars.library import Avatar
from config import Settings
from config.files import atomic_path
from fusion.engine import CUTOUT_FEATHER
from fusion.errors import FusionError
from fusion.processors.scene_layout import background_canvas, cut_out, layout_scene, square_background
from pipeline import stages
from vision.matte import Decontaminator, person_alpha

TILE = 480  # px per panel


def cutout_contact(avatar: Avatar, settings: Settings, scene: str | None = None) -> np.ndarray:
    """[photo | mask | person on the background] as one BGR image (raises when there is no cut-out)."""
    analysis = stages.avatar_stage(avatar, settings)
    person = analysis.person_mask()
    if person is None:
        raise FusionError(
            f"avatar '{avatar.avatar_id}': the person cannot be told apart from the photo's backdrop; scenes "
            "with a solid or image background show the whole photo square instead (use a plainer backdrop)"
        )
    work, _ = analysis.work_image_and_landmarks(avatar)
    alpha = person_alpha(person, CUTOUT_FEATHER)
    if scene is not None:
        template = settings.scenes[scene]
        layout = layout_scene(scene, template, settings.label, settings.images.max_pixels)
        canvas = background_canvas(
            template.background, layout.width, layout.height, max_pixels=settings.images.max_pixels
        )
        behind = square_background(canvas, layout.square, work.shape[0])
    else:
        behind = np.full_like(work, 128)
    tint = work.copy()
    tint[person <= 127] = (0.35 * tint[person <= 127] + 0.65 * np.array([40, 40, 200])).astype(np.uint8)
    panels = [work, tint, cut_out(Decontaminator(work, alpha)(work), alpha, behind)]
    return np.hstack([cv2.resize(panel, (TILE, TILE), interpolation=cv2.INTER_AREA) for panel in panels])


def write_cutout(avatar: Avatar, settings: Settings, target: Path, scene: str | None = None) -> Path:
    image = cutout_contact(avatar, settings, scene)
    target = Path(target)
    with atomic_path(target) as temporary:
        ok, data = cv2.imencode(target.suffix or ".png", image)
        if not ok:
            raise FusionError(f"cannot write {target}: use a .png or .jpg name")
        Path(temporary).write_bytes(data.tobytes())
    return target
