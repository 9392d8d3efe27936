"""The render's stages as plain functions, usable without any orchestrator.

`pipeline.run` chains them, each through a `StageRunner` (pipeline.context: timed in process, or a
Prefect task in `flows.render_flow`). Each stage writes content-addressed artifacts atomically and reuses them when they
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
from driver_synth.driver import DriverArtifact, build_driver, render_driver_video
from driver_synth.driver_video import READER_VERSION, inspect_driver_video, track_from_video
from driver_synth.track import MotionTrack
from fusion.burned_captions import BurnedCue, burned_cues
from fusion.engine import AvatarLook, FusionEngine, RenderOptions
from fusion.idle_loop import IdleLoop, LoopPlayback
from fusion.processors.scene_layout import label_font
from fusion.watermark import payload_of
from governance.c2pa_signing import ProvenanceError
from governance.provenance import new_content_id, provenance_tags, seal
from media.errors import MediaError
from media.video import EncodeOptions, VideoWriter, extract_audio_wav
from phoneme.artifacts import SpeechTimings, VisemeTrack
from phoneme.captions import write_captions
from phoneme.engines import VoiceResources, make_engine, models_for
from phoneme.g2p import shared_g2p
from phoneme.speech import SpeechArtifact, synthesize_speech
from phoneme.tts import TTSEngine, read_wav
from phoneme.visemes import VisemeTable, build_keyframes, loudness_envelope
from pipeline.report import ChunksPart
from pipeline.request import ValidatedRequest, model_hashes, output_paths
from quality.inline import KEYFRAME_EVERY, EncodeMonitor
from quality.measure import correlation_at_best_lag, rms_envelope
from vision.analysis import FaceAnalyser
from vision.avatar_analysis import AvatarAnalysis
from vision.models import ModelRegistry

LOW_DISK_BYTES = 64 * 2**20  # an encoder failure with less free space than this is a full disk
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


def avatar_look(avatar: Avatar, analysis: AvatarAnalysis) -> AvatarLook:
    """What the engine needs of an analysed avatar (fusion/ cannot read avatar records itself)."""
    work, landmarks = analysis.work_image_and_landmarks(avatar)
    person = analysis.person_mask()
    return AvatarLook(work, landmarks, person, avatar.name or avatar.avatar_id, avatar.mouth_bank)


def track_slice(track: MotionTrack, start: int, stop: int) -> MotionTrack:
    """Frames [start, stop) of a track: the same values a single pass reads at those frames."""
    return MotionTrack(track.fps, {name: values[start:stop] for name, values in track.channels.items()}, track.source)


@dataclass(frozen=True)
class SpanRendered:
    """What the engine did for frames [start, stop) of a render (a single pass: all of them)."""

    frames: int
    processors: list[str]
    providers: dict[str, str]  # model → execution provider it ran on
    reenact_seconds: float  # in the engine, per frame summed (not the encoder)
    watermark_seconds: float


def render_span(
    avatar: Avatar,
    analysis: AvatarAnalysis,
    settings: Settings,
    track: MotionTrack,
    span: tuple[int, int],
    render: RenderOptions,
    writer: VideoWriter,
    monitor: EncodeMonitor | None = None,
    done: Callable[[int], None] | None = None,
) -> SpanRendered:
    """The one frame loop: frames [start, stop) of `track`, made by the avatar's engine and streamed
    into `writer` (and shown to the gate's `monitor`); `done(n)` after each frame.

    A single pass is the span of all frames, a chunk of a long render one of several: both build the
    same engine and read the same track values and idle-loop positions, so their pixels are equal."""
    start, stop = span
    part = track if (start, stop) == (0, track.frame_count) else track_slice(track, start, stop)
    engine = FusionEngine.for_avatar(avatar_look(avatar, analysis), settings, render)
    reenact = 0.0
    with engine:
        if render.mode == "still":
            frames: Iterator[np.ndarray] = iter([engine.still] * part.frame_count)
        else:
            # an idle-loop avatar's bases continue where the previous chunk left them (the single pass's position)
            bases = idle_bases(avatar, analysis, settings.video.fps, stop, settings.paths.cache, start)
            frames = engine.frames(part, bases, first_frame=start)
        for index in range(1, part.frame_count + 1):
            began = time.perf_counter()
            frame = next(frames)
            reenact += time.perf_counter() - began
            writer.write(frame)
            if monitor is not None:
                monitor.add(frame)
            if done is not None:
                done(index)
    return SpanRendered(
        frames=part.frame_count,
        processors=engine.processor_names,
        providers=engine.providers_used,
        reenact_seconds=reenact,
        watermark_seconds=engine.watermark_seconds,
    )


@dataclass(frozen=True)
class RenderedVideo:
    """The render stage's result: the encoded, sealed video's figures for the report."""

    frames: int
    processors: list[str]
    providers: dict[str, str]
    process_ms_per_frame: float
    metadata: dict[str, str]  # the MP4 tags (provenance_tags)
    provenance: dict[str, object]  # the marks: content id, watermark, C2PA (governance.provenance.seal)
    chunks: ChunksPart | None = None  # a long render made in parallel chunks


@dataclass(frozen=True)
class RenderInputs:
    """What a render draws its frames from: the analysed avatar, the motion track and the sound, and
    where the lips must close (the gate's closure check; None for a recorded clip)."""

    analysis: AvatarAnalysis
    driver: DriverArtifact
    wav: Path
    speech: SpeechArtifact | None = None  # None for a recorded clip (no pauses to cut at, no captions)
    bilabial_spans: list[tuple[float, float]] | None = None


@dataclass(frozen=True)
class RenderJob:
    """One encode of a render into `target`: the render itself, or the gate's fallback.

    `mode` is "normal", or a quality fallback: "reduced_motion" (smaller mouth and head motion) or
    "still" (the labeled portrait without motion, with the audio). `monitor` (the quality gate's)
    observes every frame handed to the encoder; keyframes are forced where it can check the encode."""

    validated: ValidatedRequest
    settings: Settings  # the scene's (Settings.for_scene)
    inputs: RenderInputs
    target: Path
    monitor: EncodeMonitor | None = None
    mode: str = "normal"
    on_frame: FrameProgress | None = None


def render_stage(job: RenderJob) -> RenderedVideo:
    """Fusion + post + encode in one pass (in this process), streamed into a temp MP4 that is renamed
    over `job.target` only when complete."""
    validated, settings, monitor, on_frame = job.validated, job.settings, job.monitor, job.on_frame
    analysis, driver, audio, mode = job.inputs.analysis, job.inputs.driver, job.inputs.wav, job.mode
    track = driver.track()
    video = settings.video
    generation = validated.generation()
    content_id = new_content_id(generation)
    captions = scene_captions(settings, speech_timings(Path(audio)))
    render = RenderOptions(payload_of(content_id), mode, track.source == "recorded", Path(audio), captions)
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
    target = Path(job.target)
    total = track.frame_count
    progress = (lambda done: on_frame(done, total)) if on_frame is not None else None
    with (
        _writing_to(Path(validated.request.output)),
        atomic_path(target) as temporary,
        VideoWriter(temporary, video.width, video.height, encode, audio=audio) as writer,
    ):
        try:
            avatar = validated.avatar
            span = render_span(avatar, analysis, settings, track, (0, total), render, writer, monitor, progress)
        except BaseException:
            if monitor is not None:
                monitor.abort()
            raise
    with _writing_to(Path(validated.request.output)):
        marks = seal(target, generation, settings, content_id, driver.track_path, Path(audio))
    marks["watermark_ms_per_frame"] = round(1000 * span.watermark_seconds / max(total, 1), 2)
    return RenderedVideo(
        frames=total,
        processors=span.processors,
        providers=span.providers,
        process_ms_per_frame=round(1000 * span.reenact_seconds / max(total, 1), 2),
        metadata=metadata,
        provenance=marks,
    )


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
