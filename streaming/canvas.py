"""The settings a stream renders with: its scene's canvas, scaled for a chat window.

Why scaled: a streamed answer is watched small (a phone's chat bubble), and every pixel costs engine,
monitor and encoder time that must stay ahead of playback; `streaming.canvas_scale` of the scene's
canvas keeps one stream well inside real time on a 2-core machine (README "Streamed answers").
Why without burnt-in captions: the player shows the stream's WebVTT track, which grows with the
answer; burning cues into frames would need the whole answer's timing before the first frame."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from config import Settings
from fusion.engine import AvatarLook


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def stream_settings(settings: Settings, requested_scene: str | None = None) -> Settings:
    """`settings` for a stream: the request's scene (`none`: the classic layout), else
    `streaming.scene`, at `streaming.canvas_scale` of its canvas, without burnt-in captions."""
    streaming = settings.streaming
    name = requested_scene if requested_scene is not None else streaming.scene
    scale = streaming.canvas_scale
    if name is None or name == "none":
        video = settings.video.model_copy(
            update={"width": _even(settings.video.width * scale), "height": _even(settings.video.height * scale)}
        )
        return settings.model_copy(update={"video": video}).for_scene(None)
    template = settings.scenes[name]
    scaled = template.model_copy(
        update={"width": _even(template.width * scale), "height": _even(template.height * scale), "captions": None}
    )
    return settings.model_copy(update={"scenes": {**settings.scenes, name: scaled}}).for_scene(name)


def at_work_size(look: AvatarLook, work_px: int) -> AvatarLook:
    """The avatar's work image (and its landmarks and person mask) scaled down to `work_px`.

    Why: the reenactor's cost goes with the work image's pixels (measured at 540x960: 37 ms/frame at
    the file renders' 640 px, 16 ms at 448 px), and a stream's whole canvas is about as small as the
    work image, so the larger one adds time a 2-core server does not have and detail nobody sees.
    Never scaled up: a smaller photo keeps its own size."""
    size = look.work_image.shape[0]
    if work_px >= size:
        return look
    factor = work_px / size
    landmarks = np.asarray(look.landmarks, np.float64).copy()
    landmarks[:, :2] *= factor
    shrink = (work_px, round(look.work_image.shape[1] * factor))[::-1]
    person = None if look.person is None else cv2.resize(look.person, shrink, interpolation=cv2.INTER_AREA)
    image = cv2.resize(look.work_image, shrink, interpolation=cv2.INTER_AREA)
    return dataclasses.replace(look, work_image=image, landmarks=landmarks, person=person)
