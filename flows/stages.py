"""The render pipeline as plain functions, one per stage, usable without any orchestrator.

`flows.render_flow` wraps each of them in a Prefect task; `render_video` below chains them directly.
Validation (text, language, avatar, license, models, font) runs in `validate_request` before any
compute, so a bad request fails in well under a second with one clear line.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avatars.errors import LicenseError
from avatars.library import Avatar, AvatarLibrary
from avatars.license import License, check_license
from config import Settings, VoiceTemplate, load_visemes_table, load_voices
from config.files import atomic_path, content_hash, file_sha256, write_text_atomic
from driver_synth.canonical_face import SIZE, driver_frames
from driver_synth.driver import DriverArtifact, build_driver
from flows.provenance import new_content_id, provenance_tags, seal
from fusion.analysis import DETECTOR_MODEL, LANDMARKER_MODEL, FaceAnalyser, read_image
from fusion.driver_video import READER_VERSION, inspect_driver_video, track_from_video
from fusion.engine import EngineOptions, FusionEngine
from fusion.errors import FusionError
from fusion.frame_io import EncodeOptions, VideoWriter, extract_audio_wav
from fusion.framing import apply_framing, choose_framing
from fusion.identity import EMBEDDING_MODEL
from fusion.measure import correlation_at_best_lag, rms_envelope
from fusion.models import ModelRegistry
from fusion.processors.post import find_font
from fusion.processors.reenactor import ReenactorOptions
from fusion.watermark import payload_of
from phoneme.artifacts import VisemeTrack
from phoneme.captions import write_captions
from phoneme.normalize import normalize_text
from phoneme.speech import SpeechArtifact, resolve_voice, synthesize_speech
from phoneme.tts import EspeakEngine, read_wav
from phoneme.visemes import VisemeTable, build_keyframes, loudness_envelope

REDUCED_MOTION = ReenactorOptions(motion_scale=0.6, head_scale=0.4)  # the "reduced_motion" quality fallback
RENDER_MODELS = (DETECTOR_MODEL, LANDMARKER_MODEL)  # checked before every render; the identity model is not needed
WORK_SIZE = 640  # the reenactor's square work image; the face is about a third of it


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


@dataclass(frozen=True)
class ValidatedRequest:
    request: RenderRequest
    voice: VoiceTemplate
    avatar: Avatar
    license: License
    spoken_text: str


@dataclass
class StageLog:
    """Timings and cache hits per stage, for the report."""

    timings: dict[str, float] = field(default_factory=dict)
    cache: dict[str, bool] = field(default_factory=dict)

    def timed(self, name: str, func: Callable, *args, **kwargs):
        start = time.perf_counter()
        result = func(*args, **kwargs)
        self.timings[name] = round(time.perf_counter() - start, 3)
        return result


def output_paths(output: Path) -> dict[str, Path]:
    output = Path(output)
    stem = str(output.with_suffix(""))
    return {
        "video": output,
        "srt": Path(f"{stem}.srt"),
        "vtt": Path(f"{stem}.vtt"),
        "report": Path(f"{stem}.report.json"),
    }


def validate_request(request: RenderRequest, settings: Settings) -> ValidatedRequest:
    """Every check that needs no heavy compute: text, language/voice, avatar, license, models, font."""
    voices, defaults = load_voices()
    voice = resolve_voice(request.language, request.voice, voices, defaults)
    if request.driver_video is not None:
        inspect_driver_video(request.driver_video, settings.driver_video)
        spoken = request.text.strip()  # a transcript, optional: the clip's own audio is used
    else:
        spoken = normalize_text(request.text, request.language, settings.text.max_chars, settings.text.min_chars)
    avatar = AvatarLibrary.from_settings(settings.paths).get(request.avatar_id)
    if avatar.revoked:
        raise LicenseError(
            f"avatar '{avatar.avatar_id}' v{avatar.version} was revoked on {avatar.revocation.time} by "
            f"{avatar.revocation.by}; rendering this person is no longer allowed"
        )
    lic = avatar.license()
    check_license(lic, avatar.avatar_id, request.language, request.channel, request.purpose)
    read_image(avatar.photo)  # a missing or corrupt photo fails here, before any model loads
    registry = ModelRegistry(settings.paths.models)
    for name in (*RENDER_MODELS, EMBEDDING_MODEL):  # the quality gate needs the identity model too
        registry.path(name)
    if find_font(settings.label.fonts) is None:
        raise FusionError("no CJK font for the AI label; run scripts/setup to install fonts-wqy-zenhei")
    if not Path(request.output).suffix.lower() == ".mp4":
        raise FusionError(f"output must be an .mp4 file, got '{request.output}'")
    return ValidatedRequest(request, voice, avatar, lic, spoken)


def speech_stage(validated: ValidatedRequest, settings: Settings) -> SpeechArtifact:
    from phoneme.g2p import shared_g2p

    return synthesize_speech(
        validated.request.text, validated.voice, settings, EspeakEngine, lambda: shared_g2p(settings.paths.nltk_data)
    )


def viseme_stage(speech: SpeechArtifact, settings: Settings) -> VisemeTrack:
    samples, rate = read_wav(speech.wav_path)
    return build_keyframes(
        speech.timings(), VisemeTable(load_visemes_table()), settings.motion, loudness_envelope(samples, rate)
    )


def driver_stage(visemes: VisemeTrack, speech: SpeechArtifact, settings: Settings) -> DriverArtifact:
    """Motion track plus its viewable driver video (canonical face, with the speech), both cached by key."""
    driver = build_driver(visemes, settings.video.fps, settings.motion, speech.key, settings.paths.cache)
    video_path = driver.track_path.with_suffix(".mp4")
    if not video_path.is_file():
        track = driver.track()
        options = EncodeOptions(
            fps=track.fps, crf=26, preset="ultrafast", metadata=(("comment", "dhf standard driver"),)
        )
        with atomic_path(video_path) as temporary, VideoWriter(temporary, SIZE, SIZE, options, speech.wav_path) as out:
            for frame in driver_frames(track):
                out.write(frame)
    return driver


RECORDED_FORMAT_VERSION = 1


@dataclass(frozen=True)
class DriverAudio:
    """The audio of a recorded driver clip, as the WAV that is muxed into the output."""

    key: str
    wav_path: Path
    had_audio: bool
    cache_hit: bool


def _clip_key(validated: ValidatedRequest, extra: dict[str, object]) -> str:
    clip = Path(validated.request.driver_video)
    return content_hash({"v": RECORDED_FORMAT_VERSION, "clip": file_sha256(clip), **extra})


def driver_audio_stage(validated: ValidatedRequest, settings: Settings) -> DriverAudio:
    """The clip's audio (or silence when it has none), cached by the clip's content hash."""
    clip = Path(validated.request.driver_video)
    info = inspect_driver_video(clip, settings.driver_video)
    key = _clip_key(validated, {"audio": True})
    wav_path = settings.paths.cache / "recorded" / f"{key}.wav"
    if wav_path.is_file():
        return DriverAudio(key, wav_path, info.audio_codec is not None, cache_hit=True)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(wav_path) as temporary:
        had_audio = extract_audio_wav(clip, temporary, info.duration)
    return DriverAudio(key, wav_path, had_audio, cache_hit=False)


def recorded_driver_stage(
    validated: ValidatedRequest, settings: Settings, on_frame: Callable[[int, int], None] | None = None
) -> DriverArtifact:
    """Motion read from the clip's landmarks, cached by the clip's hash and the reading settings."""
    fps = settings.video.fps
    key = _clip_key(validated, {"fps": fps, "settings": asdict(settings.driver_video), "reader": READER_VERSION})
    path = settings.paths.cache / "driver" / f"{key}.npz"
    if path.is_file():
        return DriverArtifact(key, path, cache_hit=True)
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models), settings.face.detector_min_score)
    track = track_from_video(Path(validated.request.driver_video), analyser, fps, settings.driver_video, on_frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        track.save(temporary)
    return DriverArtifact(key, path, cache_hit=False)


@dataclass(frozen=True)
class AvatarAnalysis:
    landmarks_path: Path
    cache_hit: bool

    def work_image_and_landmarks(self, avatar: Avatar) -> tuple[np.ndarray, np.ndarray]:
        data = np.load(self.landmarks_path)
        image = read_image(avatar.photo)
        from fusion.framing import Framing

        framing = Framing(crop=tuple(int(v) for v in data["crop"]), work_size=int(data["work_size"]))
        return apply_framing(image, data["landmarks"], framing)


def avatar_stage(avatar: Avatar, settings: Settings) -> AvatarAnalysis:
    """Detect and fit the face on the avatar photo once; cached per avatar version and photo hash."""
    key = content_hash(
        {
            "avatar": avatar.avatar_id,
            "version": avatar.version,
            "photo": avatar.photo_sha256(),
            "work": WORK_SIZE,
            "models": used_model_hashes(settings),
        }
    )
    path = settings.paths.cache / "avatars" / f"{avatar.avatar_id}-v{avatar.version}-{key}.npz"
    if path.is_file():
        return AvatarAnalysis(path, cache_hit=True)
    image = read_image(avatar.photo)
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models), settings.face.detector_min_score)
    face = analyser.single_face(image, source=f"avatar '{avatar.avatar_id}' photo {avatar.photo.name}")
    if face.width < settings.face.min_face_px:
        raise FusionError(
            f"the face in avatar '{avatar.avatar_id}' is {face.width:.0f} px wide, below "
            f"{settings.face.min_face_px} px; use a larger photo"
        )
    framing = choose_framing(face.landmarks, image.shape, WORK_SIZE)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(
            handle,
            landmarks=face.landmarks,
            crop=np.array(framing.crop),
            work_size=WORK_SIZE,
            box=np.array(face.detection.box),
        )
    return AvatarAnalysis(path, cache_hit=False)


def idle_bases(avatar: Avatar, analysis: AvatarAnalysis, fps: int, count: int):
    """Base frames of an idle-loop avatar (framed like its reference frame), or None for a photo."""
    if avatar.idle_video is None:
        return None
    from fusion.framing import Framing
    from fusion.idle_loop import IdleLoop

    with np.load(analysis.landmarks_path) as data:
        framing = Framing(crop=tuple(int(v) for v in data["crop"]), work_size=int(data["work_size"]))
    return IdleLoop(avatar.idle_video, framing, fps).bases(count)


def render_stage(
    validated: ValidatedRequest,
    analysis: AvatarAnalysis,
    driver: DriverArtifact,
    audio: Path,
    settings: Settings,
    on_frame: Callable[[int, int], None] | None = None,
    mode: str = "normal",
    target: Path | None = None,
) -> dict[str, object]:
    """Fusion + post + encode, streamed into a temp MP4 that is renamed over the output only when complete.

    `mode` is "normal", or a quality fallback: "reduced_motion" (smaller mouth and head motion) or
    "still" (the labeled portrait without motion, with the audio)."""
    track = driver.track()
    work, landmarks = analysis.work_image_and_landmarks(validated.avatar)
    video = settings.video
    content_id = new_content_id(validated, settings)
    engine = FusionEngine(
        work,
        landmarks,
        EngineOptions(
            video.width,
            video.height,
            video.fps,
            settings.post,
            settings.label,
            reenactor=REDUCED_MOTION if mode == "reduced_motion" else ReenactorOptions(),
            smooth_motion=track.source == "recorded",
            watermark_payload=payload_of(content_id),
            watermark_strength=settings.provenance.watermark_strength,
        ),
    )
    metadata = provenance_tags(validated, settings, content_id)
    encode = EncodeOptions(
        video.fps, video.crf, video.preset, video.audio_bitrate, video.encoder_threads, tuple(metadata.items())
    )
    target = Path(target or validated.request.output)
    reenact_seconds = 0.0
    with (
        atomic_path(target) as temporary,
        VideoWriter(temporary, video.width, video.height, encode, audio=audio) as writer,
    ):
        if mode == "still":
            frames = iter([engine.still] * track.frame_count)
        else:
            frames = engine.frames(track, idle_bases(validated.avatar, analysis, video.fps, track.frame_count))
        for index in range(track.frame_count):
            start = time.perf_counter()
            frame = next(frames)
            reenact_seconds += time.perf_counter() - start
            writer.write(frame)
            if on_frame is not None:
                on_frame(index + 1, track.frame_count)
    marks = seal(target, validated, settings, content_id, driver.track_path, Path(audio))
    watermark_seconds = engine.watermark_seconds
    marks["watermark_ms_per_frame"] = round(1000 * watermark_seconds / max(track.frame_count, 1), 2)
    return {
        "frames": track.frame_count,
        "processors": engine.processor_names,
        "process_ms_per_frame": round(1000 * reenact_seconds / max(track.frame_count, 1), 2),
        "metadata": metadata,
        "provenance": marks,
    }


def captions_stage(speech: SpeechArtifact, validated: ValidatedRequest) -> dict[str, Path]:
    paths = output_paths(validated.request.output)
    timings = speech.timings()
    with atomic_path(paths["srt"]) as srt, atomic_path(paths["vtt"]) as vtt:
        write_captions(timings.words, timings.language, srt, vtt)
    return {"srt": paths["srt"], "vtt": paths["vtt"]}


def track_audio_sync(audio: Path, driver: DriverArtifact) -> dict[str, float]:
    """Correlation and lag between the driver's mouth opening and the audio envelope (a cheap self-check)."""
    samples, rate = read_wav(audio)
    track = driver.track()
    envelope = rms_envelope(samples.astype(np.float32) / 32768.0, rate, track.fps, track.frame_count)
    return correlation_at_best_lag(track.mouth_gap(), envelope, track.fps)


def render_model_hashes(settings: Settings) -> dict[str, str]:
    """Pinned sha256 of the face analysis models (part of the avatar analysis cache key)."""
    registry = ModelRegistry(settings.paths.models)
    return {name: registry.spec(name).sha256 for name in RENDER_MODELS}


def used_model_hashes(settings: Settings) -> dict[str, str]:
    """Pinned sha256 of every model a render uses, the quality gate's identity model included."""
    registry = ModelRegistry(settings.paths.models)
    return {name: registry.spec(name).sha256 for name in (*RENDER_MODELS, EMBEDDING_MODEL)}


def write_report(
    validated: ValidatedRequest, settings: Settings, log: StageLog, details: dict[str, object], published: bool = True
) -> Path:
    """The render's report beside its video; for a render the quality gate did not publish, beside
    the rejected video instead (`<name>.rejected.report.json`), so it never describes another file."""
    paths = output_paths(validated.request.output)
    video_path = Path(validated.request.output)
    report_path = paths["report"] if published else video_path.with_name(f"{video_path.stem}.rejected.report.json")
    report = {
        "output": str(video_path) if published else None,
        "published": published,
        "sha256": file_sha256(video_path) if published and video_path.is_file() else None,
        "request": {
            "text": validated.request.text,
            "spoken_text": validated.spoken_text,
            "language": validated.request.language,
            "voice": validated.voice.name,
            "channel": validated.request.channel,
            "purpose": validated.request.purpose,
        },
        "avatar": {
            "id": validated.avatar.avatar_id,
            "version": validated.avatar.version,
            "photo_sha256": validated.avatar.photo_sha256(),
        },
        "license": validated.license.as_report(),
        "models": used_model_hashes(settings),
        "stage_seconds": log.timings,
        "cache_hits": log.cache,
        "settings": {"video": asdict(settings.video), "motion": asdict(settings.motion), "post": asdict(settings.post)},
        "user": getpass.getuser(),
        "created": dt.datetime.now(dt.UTC).isoformat(),
        **details,
    }
    write_text_atomic(report_path, json.dumps(report, ensure_ascii=False, indent=2, default=str))
    return report_path
