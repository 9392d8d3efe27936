"""The render's stages as plain functions, usable without any orchestrator.

`pipeline.run` chains them (directly, or through a `call` that `flows.render_flow` turns into
Prefect tasks). Each stage writes content-addressed artifacts atomically and reuses them when they
exist, so a killed render resumes from its finished stages.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatars.analysis import avatar_analysis
from avatars.library import Avatar
from config import Settings, VoiceTemplate, load_visemes_table
from config.errors import OutputPathError
from config.files import atomic_path, content_hash, file_sha256
from config.settings import FusionSettings
from driver_synth.driver import DriverArtifact, build_driver, render_driver_video
from driver_synth.driver_video import READER_VERSION, inspect_driver_video, track_from_video
from fusion.burned_captions import BurnedCue, burned_cues
from fusion.engine import EngineOptions, EngineResources, FusionEngine
from fusion.idle_loop import IdleLoop, LoopPlayback
from fusion.mouth_bank import MouthBank
from fusion.processors import mel
from fusion.processors.base import AudioTrack
from fusion.processors.reenactor import ReenactorOptions
from fusion.processors.scene_layout import label_font
from fusion.watermark import payload_of
from governance.c2pa_signing import ProvenanceError
from governance.provenance import new_content_id, provenance_tags, seal
from media.errors import MediaError
from media.video import EncodeOptions, VideoWriter, extract_audio_wav, read_audio_mono
from phoneme.artifacts import SpeechTimings, VisemeTrack
from phoneme.captions import write_captions
from phoneme.engines import VoiceResources, make_engine, models_for
from phoneme.g2p import shared_g2p
from phoneme.speech import SpeechArtifact, synthesize_speech
from phoneme.tts import TTSEngine, read_wav
from phoneme.visemes import VisemeTable, build_keyframes, loudness_envelope
from pipeline.request import ValidatedRequest, model_hashes, output_paths
from quality.inline import KEYFRAME_EVERY, EncodeMonitor
from quality.measure import correlation_at_best_lag, rms_envelope
from vision.analysis import FaceAnalyser
from vision.avatar_analysis import AvatarAnalysis
from vision.models import ModelRegistry
from vision.providers import ProviderChoice

LOW_DISK_BYTES = 64 * 2**20  # an encoder failure with less free space than this is a full disk
REDUCED_MOTION = ReenactorOptions(motion_scale=0.6, head_scale=0.4)  # the "reduced_motion" quality fallback
RECORDED_FORMAT_VERSION = 1

FrameProgress = Callable[[int, int], None]


def speech_stage(validated: ValidatedRequest, settings: Settings) -> SpeechArtifact:
    return speak(validated.request.text, validated.voice, settings)


def speak(text: str, voice: VoiceTemplate, settings: Settings) -> SpeechArtifact:
    """`text` said by `voice`'s engine (the speech stage without a request). A neural voice's model
    files are verified against their pins when its engine is built, which happens only on a cache miss."""
    names = models_for(voice)
    hashes = model_hashes(settings, names) if names else {}

    def engine() -> TTSEngine:
        registry = ModelRegistry(settings.paths.models)
        models = {name: registry.path(name) for name in names}
        resources = VoiceResources(models, hashes, settings.paths.cache / "sentences", settings.tts.threads)
        return make_engine(voice, resources)

    return synthesize_speech(text, voice, settings, engine, lambda: shared_g2p(settings.paths.nltk_data), hashes)


def viseme_stage(speech: SpeechArtifact, settings: Settings) -> VisemeTrack:
    samples, rate = read_wav(speech.wav_path)
    return build_keyframes(
        speech.timings(), VisemeTable(load_visemes_table()), settings.motion, loudness_envelope(samples, rate)
    )


def driver_stage(visemes: VisemeTrack, speech: SpeechArtifact, settings: Settings) -> DriverArtifact:
    """Motion track plus its viewable driver video (canonical face, with the speech), both cached by key."""
    driver = build_driver(visemes, settings.video.fps, settings.motion, speech.key, settings.paths.cache)
    render_driver_video(driver, speech.wav_path)
    return driver


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
    validated: ValidatedRequest, settings: Settings, on_frame: FrameProgress | None = None
) -> DriverArtifact:
    """Motion read from the clip's landmarks, cached by the clip's hash and the reading settings."""
    fps = settings.video.fps
    reading = {"fps": fps, "settings": settings.driver_video.model_dump(), "reader": READER_VERSION}
    key = _clip_key(validated, reading)
    path = settings.paths.cache / "driver" / f"{key}.npz"
    if path.is_file():
        return DriverArtifact(key, path, cache_hit=True)
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models), settings.face.detector_min_score)
    track = track_from_video(Path(validated.request.driver_video), analyser, fps, settings.driver_video, on_frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        track.save(temporary)
    return DriverArtifact(key, path, cache_hit=False)


def avatar_stage(avatar: Avatar, settings: Settings) -> AvatarAnalysis:
    """The avatar photo's analysis (face, framing, mask, identity, skin colour): computed once per
    avatar version by the avatar library and cached there, shared with the quality monitors."""
    return avatar_analysis(avatar, settings)


def idle_bases(
    avatar: Avatar, analysis: AvatarAnalysis, fps: int, count: int, cache: Path, start: int = 0
) -> LoopPlayback | None:
    """Base frames [start, count) of an idle-loop avatar (framed like its reference frame; the loop
    is prepared once per avatar version and cached under `cache`), or None for a photo."""
    if avatar.idle_video is None:
        return None
    return IdleLoop(avatar.idle_video, analysis.framing(), fps, cache).bases(count, start)


def provider_choice(settings: Settings) -> ProviderChoice:
    """The execution providers the configuration asks for; TensorRT engines cached under the DHF home."""
    fusion = settings.fusion
    return ProviderChoice(
        requested=fusion.providers,
        tensorrt_fp16=fusion.tensorrt_fp16,
        cache_dir=settings.paths.cache / "tensorrt",
        threads=fusion.threads,
    )


def with_mouth_bank(fusion: FusionSettings, has_bank: bool) -> FusionSettings:
    """A personal avatar (one with a mouth bank) shows its own mouths: `mouth_bank` goes right after
    the reenactor when the chain does not list it and `fusion.mouth_bank.auto` is on."""
    names = list(fusion.processors)
    if not has_bank or not fusion.mouth_bank.auto or "mouth_bank" in names:
        return fusion
    return fusion.model_copy(update={"processors": (names[0], "mouth_bank", *names[1:])})


def build_engine(
    avatar: Avatar,
    analysis: AvatarAnalysis,
    settings: Settings,
    payload: int,
    mode: str = "normal",
    recorded: bool = False,
    audio: Path | None = None,
    full_frame: bool = False,
    timings: Path | None = None,
) -> FusionEngine:
    """The one way a render, a chunk of a long render and a preview build the engine, so all three run
    the same chain with the same options (a chunk's pixels equal the single pass's). `audio`: the
    speech (or the recorded clip's audio), read only when a processor of the chain hears it.
    `timings`: the speech's timed words, burnt in as captions when the render's scene asks for them."""
    work, landmarks = analysis.work_image_and_landmarks(avatar)
    video = settings.video
    track = None
    if audio is not None and "lip_syncer" in settings.fusion.processors:
        track = AudioTrack(read_audio_mono(Path(audio), mel.RATE), mel.RATE)
    bank = MouthBank.load(avatar.mouth_bank) if avatar.mouth_bank is not None else None
    fusion = with_mouth_bank(settings.fusion, bank is not None)
    options = EngineOptions(
        video.width,
        video.height,
        video.fps,
        settings.post,
        settings.label,
        reenactor=REDUCED_MOTION if mode == "reduced_motion" else ReenactorOptions(),
        smooth_motion=recorded,
        watermark_payload=payload,
        watermark_strength=settings.provenance.watermark_strength,
        full_frame=full_frame,
        fusion=fusion,
        scene=settings.scene_template,
        scene_name=settings.scene.name or "",
        images=settings.images,
    )
    resources = EngineResources(
        ModelRegistry(settings.paths.models),
        provider_choice(settings),
        track,
        avatar_name=avatar.name or avatar.avatar_id,
        captions=scene_captions(settings, timings),
        mouth_bank=bank,
    )
    return FusionEngine(work, landmarks, options, person=analysis.person_mask(), resources=resources)


def speech_timings(audio: Path | None) -> Path | None:
    """The timed words of a synthesized speech WAV (the speech stage writes `<key>.json` beside
    `<key>.wav`); None for a recorded clip's audio, which has no words."""
    if audio is None:
        return None
    timings = Path(audio).with_suffix(".json")
    return timings if timings.is_file() else None


def scene_captions(settings: Settings, timings: Path | None) -> tuple[BurnedCue, ...]:
    """The burnt-in cues of the render's scene (none without a scene, captions or timed words)."""
    template = settings.scene_template
    if template is None or template.captions is None or timings is None:
        return ()
    spoken = SpeechTimings.from_json(timings)
    width, short, font = template.width, min(template.width, template.height), label_font(settings.label)
    return tuple(burned_cues(spoken.words, spoken.language, template.captions, short, width, font))


@contextmanager
def _writing_to(output: Path) -> Iterator[None]:
    """Encoder failures named by the user's output, not the hidden staging file; a full disk said so."""
    try:
        yield
    except (MediaError, ProvenanceError, OSError) as exc:
        free = shutil.disk_usage(output.parent).free if output.parent.is_dir() else 0
        if free < LOW_DISK_BYTES:
            raise OutputPathError(
                f"the disk is full under {output.parent} ({free // 2**20} MiB free) while writing {output.name}; "
                "free disk space (df -h) and re-run"
            ) from exc
        raise


def render_stage(
    validated: ValidatedRequest,
    analysis: AvatarAnalysis,
    driver: DriverArtifact,
    audio: Path,
    settings: Settings,
    on_frame: FrameProgress | None = None,
    mode: str = "normal",
    target: Path | None = None,
    monitor: EncodeMonitor | None = None,
) -> dict[str, object]:
    """Fusion + post + encode, streamed into a temp MP4 that is renamed over the output only when complete.

    `mode` is "normal", or a quality fallback: "reduced_motion" (smaller mouth and head motion) or
    "still" (the labeled portrait without motion, with the audio). `monitor` (the quality gate's)
    observes every frame handed to the encoder; keyframes are forced where it can check the encode."""
    track = driver.track()
    video = settings.video
    generation = validated.generation()
    content_id = new_content_id(generation)
    engine = build_engine(
        validated.avatar, analysis, settings, payload_of(content_id), mode, track.source == "recorded", Path(audio),
        timings=speech_timings(Path(audio)),
    )  # fmt: skip
    metadata = provenance_tags(generation, settings, content_id)
    encode = EncodeOptions(
        video.fps,
        video.crf,
        video.preset,
        video.audio_bitrate,
        video.encoder_thread_count(),
        tuple(metadata.items()),
        keyframe_every=KEYFRAME_EVERY,
    )
    target = Path(target or validated.request.output)
    reenact_seconds = 0.0
    with (
        engine,
        _writing_to(Path(validated.request.output)),
        atomic_path(target) as temporary,
        VideoWriter(temporary, video.width, video.height, encode, audio=audio) as writer,
    ):
        if mode == "still":
            frames = iter([engine.still] * track.frame_count)
        else:
            bases = idle_bases(validated.avatar, analysis, video.fps, track.frame_count, settings.paths.cache)
            frames = engine.frames(track, bases)
        try:
            for index in range(track.frame_count):
                start = time.perf_counter()
                frame = next(frames)
                reenact_seconds += time.perf_counter() - start
                writer.write(frame)
                if monitor is not None:
                    monitor.add(frame)
                if on_frame is not None:
                    on_frame(index + 1, track.frame_count)
        except BaseException:
            if monitor is not None:
                monitor.abort()
            raise
    with _writing_to(Path(validated.request.output)):
        marks = seal(target, generation, settings, content_id, driver.track_path, Path(audio))
    marks["watermark_ms_per_frame"] = round(1000 * engine.watermark_seconds / max(track.frame_count, 1), 2)
    return {
        "frames": track.frame_count,
        "processors": engine.processor_names,
        "providers": engine.providers_used,
        "process_ms_per_frame": round(1000 * reenact_seconds / max(track.frame_count, 1), 2),
        "metadata": metadata,
        "provenance": marks,
    }


def captions_stage(speech: SpeechArtifact, validated: ValidatedRequest, stem: Path | None = None) -> dict[str, Path]:
    """SRT and VTT captions beside the output, or at `<stem>.srt/.vtt` (a render's staging name,
    published together with its video)."""
    paths = output_paths(Path(stem).with_suffix(".mp4") if stem is not None else validated.request.output)
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
