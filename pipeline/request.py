"""A render request and the checks that need no heavy compute, run before any stage starts.

Why up front: text, language/voice, avatar, license, photo, models and font are all checked in well
under a second, so a bad request fails with one clear line before Prefect or any model starts.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

from avatars.library import Avatar, AvatarLibrary
from avatars.license import License
from config import Settings, VoiceTemplate, load_voices
from config.files import check_output_target
from driver_synth.driver_video import inspect_driver_video
from fusion.errors import FusionError
from fusion.processors.catalog import check_placed, model_format, required_models
from fusion.processors.post import find_font
from fusion.processors.scene_layout import SceneError, layout_scene
from governance.audit import AuditLog
from governance.authorization import authorize
from governance.model_licences import check_model_licences
from governance.provenance import Generation
from phoneme.engines import check_voice, describe_voice, models_for
from phoneme.normalize import normalize_text
from phoneme.speech import resolve_voice
from phoneme.tts import EngineInfo
from vision.analysis import DETECTOR_MODEL, LANDMARKER_MODEL, read_image
from vision.identity import EMBEDDING_MODEL
from vision.models import ModelRegistry

RENDER_MODELS = (DETECTOR_MODEL, LANDMARKER_MODEL)  # face analysis of the avatar and the recorded driver
USED_MODELS = (*RENDER_MODELS, EMBEDDING_MODEL)  # plus the quality gate's identity model


@dataclass(frozen=True)
class RenderRequest:
    text: str
    avatar_id: str
    language: str
    output: Path
    voice: str | None = None
    channel: str = "demo"
    purpose: str = "demo"
    driver_video: Path | None = None  # a recorded face clip drives the avatar (its audio is used, text optional)
    scene: str | None = None  # a scene template (README: Scenes); None: the channel's; "none": the classic layout


@dataclass(frozen=True)
class ValidatedRequest:
    request: RenderRequest
    voice: VoiceTemplate
    avatar: Avatar
    license: License
    spoken_text: str
    scene: str | None = None  # the scene this render uses (resolved from the request, its channel, the config)
    voice_info: EngineInfo | None = None  # the engine that speaks (None: a recorded driver's own audio)
    actor: str = ""  # who asked, authenticated: the OS user (CLI) or `api-key:<id>`; the report's `user`
    audit_anchor: tuple[int, str] | None = None  # the log's head (entries, last hash) once the licence checked out

    @property
    def voice_models(self) -> tuple[str, ...]:
        return voice_models(self.request, self.voice)

    def generation(self) -> Generation:
        """What the AI marks say about this render."""
        return Generation(
            avatar=self.avatar,
            license_id=self.license.license_id,
            title=Path(self.request.output).name,
            spoken_text=self.spoken_text,
            voice=self.voice.name,
            driver_video=str(self.request.driver_video or ""),
            voice_model=self.voice_info.as_dict() if self.voice_info else {},
            audit_anchor=self.audit_anchor,
        )


def voice_models(request: RenderRequest, voice: VoiceTemplate) -> tuple[str, ...]:
    """The pinned models the request's voice loads (none for espeak-ng, none for a recorded driver,
    whose own audio is used)."""
    return models_for(voice) if request.driver_video is None else ()


def output_paths(output: Path) -> dict[str, Path]:
    output = Path(output)
    stem = str(output.with_suffix(""))
    return {
        "video": output,
        "srt": Path(f"{stem}.srt"),
        "vtt": Path(f"{stem}.vtt"),
        "report": Path(f"{stem}.report.json"),
    }


def resolve_scene(request: RenderRequest, settings: Settings) -> str | None:
    """The scene of a request: its own (`none`: the classic layout), else its channel's, else the
    configured default; the template is laid out and checked against the AI label here, before any
    compute (one line naming the element and the fix otherwise)."""
    if request.scene is not None:
        if request.scene == "none":
            return None
        if request.scene not in settings.scenes:
            known = ", ".join(sorted(settings.scenes)) or "none defined"
            raise SceneError(
                f"unknown scene '{request.scene}'; configured: {known} (add it under scenes: in your config, "
                "or use 'none')"
            )
        name: str | None = request.scene
    else:
        name = settings.scene.channels.get(request.channel, settings.scene.name)
    if name is not None:
        layout_scene(name, settings.scenes[name], settings.label, settings.images.max_pixels)
    return name


def validate_request(request: RenderRequest, settings: Settings, actor: str = "") -> ValidatedRequest:
    """Every check that needs no heavy compute: text, language/voice, avatar, license, models (the
    processor chain's too: placed, sha256 right, licence in scope), font."""
    voices, defaults = load_voices(settings)
    voice = resolve_voice(request.language, request.voice, voices, defaults)
    check_voice(voice)
    if request.driver_video is not None:
        inspect_driver_video(request.driver_video, settings.driver_video)
        spoken = request.text.strip()  # a transcript, optional: the clip's own audio is used
    else:
        spoken = normalize_text(request.text, request.language, settings.text.max_chars, settings.text.min_chars)
    avatar = AvatarLibrary.from_settings(settings.paths).get(request.avatar_id)
    audit = AuditLog.from_settings(settings)
    lic = authorize(avatar, request.language, request.channel, request.purpose, audit)
    # A missing, corrupt or too large photo (its header, before decoding) is refused before any model loads.
    read_image(avatar.photo, settings.images.max_pixels)
    registry = ModelRegistry(settings.paths.models)
    speaking = voice_models(request, voice)
    for name in (*USED_MODELS, *speaking):  # the voice's model too: missing or changed is refused here
        registry.path(name)
    chain = required_models(settings.fusion)  # the neural processors' models: placed, intact, licensed
    check_placed(registry, chain)
    licensed = [(registry.spec(name), model_format(name)) for name in chain]
    licensed += [(registry.spec(name), None) for name in speaking]
    check_model_licences(licensed, request.purpose, request.channel, settings.fusion)
    voice_info = None
    if request.driver_video is None:
        voice_info = describe_voice(voice, {name: registry.spec(name).sha256 for name in speaking})
    if find_font(settings.label.fonts) is None:
        raise FusionError("no CJK font for the AI label; run scripts/setup to install fonts-wqy-zenhei")
    if Path(request.output).suffix.lower() != ".mp4":
        raise FusionError(f"output must be an .mp4 file, got '{request.output}'")
    scene = resolve_scene(request, settings)
    for path in output_paths(request.output).values():
        check_output_target(path)
    return ValidatedRequest(
        request, voice, avatar, lic, spoken, scene, voice_info, actor or getpass.getuser(), audit.head()
    )


def model_hashes(
    settings: Settings, names: tuple[str, ...] | None = None, voice_models: tuple[str, ...] = ()
) -> dict[str, str]:
    """Pinned sha256 of the models a render uses (the report, the audit log, cache keys): by default
    the face-analysis models, those of the configured processor chain and `voice_models` (the neural
    voice's, `ValidatedRequest.voice_models`)."""
    registry = ModelRegistry(settings.paths.models)
    if names is None:
        names = (*USED_MODELS, *required_models(settings.fusion), *voice_models)
    return {name: registry.spec(name).sha256 for name in names}


def staging_path(output: Path, token: str) -> Path:
    """Where one render is encoded before it is judged: hidden, beside the output (same file system),
    and unique to the render (`token`), so two renders to the same output never share a file."""
    output = Path(output)
    return output.with_name(f".{output.stem}.{token}.pending{output.suffix}")
