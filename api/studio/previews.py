"""Previews for the New video page: a voice's short sample (WAV), an avatar's thumbnail and the scene's
layout (PNG: the engine's own still frame of the avatar in that scene, with the AI label, logo and name
tag the render draws, and the caption box outlined where captions will run).

Why the engine and not a drawing of boxes: the preview must show what the render will show, so it is
`FusionEngine.still`, built exactly as a render builds it (`FusionEngine.for_avatar`). Why cached on
disk: building the engine costs about a second and the speech a fraction of one; the key covers every
input (avatar version and photo, scene template, label, canvas), so a changed config is a new file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from avatars.library import Avatar
from config import Settings
from config.files import atomic_path, content_hash
from config.loader import load_voices
from fusion.engine import FusionEngine, RenderOptions
from fusion.processors.scene_layout import layout_scene
from phoneme.errors import SpeechError
from pipeline import stages
from vision.analysis import read_image

PREVIEW_FORMAT_VERSION = 1
THUMBNAIL_HEIGHT = 160
PREVIEW_WIDTH = 480  # the layout preview is shown small: 480 px wide is enough to see every element
CAPTION_OUTLINE = (0, 215, 255)  # BGR amber: visible on light and dark scenes
SAMPLES = {  # what a voice says in its preview: short (about two seconds), plain, in its language
    "en": "Hello, this is how I sound.",
    "zh": "你好，这是我的声音。",
    "es": "Hola, así suena mi voz.",
    "fr": "Bonjour, voici ma voix.",
    "de": "Hallo, so klingt meine Stimme.",
    "ja": "こんにちは、これが私の声です。",
    "ko": "안녕하세요, 제 목소리입니다.",
}


def cache_folder(settings: Settings) -> Path:
    return settings.paths.cache / "studio"


def voice_sample(settings: Settings, voice_name: str) -> Path:
    """The voice saying its language's sample sentence: the speech stage's own cached WAV."""
    voices, _ = load_voices(settings)
    if voice_name not in voices:
        raise SpeechError(f"unknown voice '{voice_name}'; configured: {', '.join(sorted(voices))}")
    voice = voices[voice_name]
    sample = SAMPLES.get(voice.language)
    if sample is None:
        raise SpeechError(f"no preview sentence for language '{voice.language}'; add one to api/studio/previews.py")
    return stages.speak(sample, voice, settings).wav_path


def thumbnail(settings: Settings, avatar: Avatar) -> Path:
    """The avatar's photo, THUMBNAIL_HEIGHT px high, as PNG (the photo is read bounded, as a render reads it)."""
    key = content_hash({"v": PREVIEW_FORMAT_VERSION, "photo": avatar.photo_sha256(), "h": THUMBNAIL_HEIGHT})
    target = cache_folder(settings) / f"thumb-{key}.png"
    if not target.is_file():
        image = read_image(avatar.photo, settings.images.max_pixels)
        scale = THUMBNAIL_HEIGHT / image.shape[0]
        small = cv2.resize(
            image, (max(1, round(image.shape[1] * scale)), THUMBNAIL_HEIGHT), interpolation=cv2.INTER_AREA
        )
        _write_png(target, small)
    return target


def scene_preview(settings: Settings, avatar: Avatar, scene: str | None) -> Path:
    """The engine's still frame of `avatar` in `scene` (None or "none": the classic layout), with the
    scene's caption box outlined; PREVIEW_WIDTH px wide, PNG, cached."""
    name = None if scene in (None, "", "none") else scene
    if name is not None and name not in settings.scenes:
        from fusion.processors.scene_layout import SceneError

        known = ", ".join(sorted(settings.scenes)) or "none defined"
        raise SceneError(f"unknown scene '{name}'; configured: {known} (add it under scenes: in your config)")
    chosen = settings.for_scene(name)
    template = chosen.scenes[name].model_dump(mode="json") if name else None
    key = content_hash(
        {
            "v": PREVIEW_FORMAT_VERSION,
            "avatar": [avatar.avatar_id, avatar.version, avatar.photo_sha256(), avatar.name],
            "scene": [name, template],
            "label": chosen.label.model_dump(mode="json"),
            "video": [chosen.video.width, chosen.video.height],
            "fusion": chosen.fusion.model_dump(mode="json"),
        }
    )
    target = cache_folder(settings) / f"scene-{key}.png"
    if target.is_file():
        return target
    analysis = stages.avatar_stage(avatar, chosen)
    with FusionEngine.for_avatar(stages.avatar_look(avatar, analysis), chosen, RenderOptions(0)) as engine:
        still = engine.still.copy()
    if name is not None:
        layout = layout_scene(name, chosen.scenes[name], chosen.label, chosen.images.max_pixels)
        if layout.captions is not None:
            x0, y0, x1, y1 = layout.captions
            thickness = max(2, round(min(still.shape[:2]) / 200))
            cv2.rectangle(still, (x0, y0), (x1 - 1, y1 - 1), CAPTION_OUTLINE, thickness)
    scale = PREVIEW_WIDTH / still.shape[1]
    small = cv2.resize(still, (PREVIEW_WIDTH, max(1, round(still.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    _write_png(target, small)
    return target


def _write_png(target: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {target.name} as PNG")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        Path(temporary).write_bytes(data.tobytes())
