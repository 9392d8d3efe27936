"""Typed settings: one pydantic model per section of `config/default.yaml` (+ `quality.yaml`).

Why pydantic: a wrong type (`video.fps: "twenty"`), an unknown key (a typo) or an out-of-range
value is refused when the file is loaded, with the file and the key named, instead of surfacing
later as a traceback in some stage. Every model is frozen and forbids extra keys; stages receive
exactly the section they need, so tests and batch runs can hand each render its own configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from config import processors as registry
from config.processors import DEFAULT_CHAIN


def _expand_path(value: object) -> object:
    """`~` and `$HOME`-style paths in YAML mean what they mean in a shell."""
    return Path(os.path.expanduser(os.path.expandvars(str(value)))) if isinstance(value, str | Path) else value


def _even(value: int) -> int:
    if value % 2:
        raise ValueError(f"must be even (H.264 yuv420p needs even sizes), got {value}")
    return value


def _yaml_switch(value: object) -> object:
    """YAML reads a bare `off` as false (and `on`/`yes` as true): take them as the words meant."""
    if isinstance(value, bool):
        return "required" if value else "off"
    return value


ExpandedPath = Annotated[Path, BeforeValidator(_expand_path)]
EvenSize = Annotated[int, Field(ge=64, le=7680), AfterValidator(_even)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
Degrees = Annotated[float, Field(ge=0.0, le=90.0)]
X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"
]


class Section(BaseModel):
    """Base of every settings section: immutable, and unknown keys are errors (typos fail loudly)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def with_changes(self, **changes: object) -> Section:
        """A validated copy with some values changed (e.g. a per-job quality fallback)."""
        return type(self).model_validate({**self.model_dump(), **changes})


class PathSettings(Section):
    home: ExpandedPath = Path("~/.local/share/dhf").expanduser()
    library: ExpandedPath | None = None  # the avatar library root; default <home>/avatars

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def cache(self) -> Path:
        return self.home / "cache"

    @property
    def avatars(self) -> Path:
        return self.library if self.library is not None else self.home / "avatars"

    @property
    def audit_db(self) -> Path:
        return self.home / "audit" / "audit.sqlite"

    @property
    def nltk_data(self) -> Path:
        return self.home / "nltk_data"


class VideoSettings(Section):
    width: EvenSize = 1920
    height: EvenSize = 1080
    fps: int = Field(25, ge=1, le=120)
    crf: int = Field(20, ge=0, le=51)
    preset: X264Preset = "veryfast"
    audio_bitrate: str = Field("128k", pattern=r"^[0-9]+k$")
    encoder_threads: int = Field(0, ge=0, le=256)

    def encoder_thread_count(self) -> int:
        """x264's threads: as configured, or (0) every core but one, which the engine producing the
        frames keeps busy. Measured on 2 cores (docs/benchmarks.md): x264's own choice (3 threads)
        fought the engine for the second core; 1 thread made the render stage 7 % faster."""
        if self.encoder_threads:
            return self.encoder_threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
        return max(1, cores - 1)


class TextSettings(Section):
    max_chars: int = Field(10_000, ge=1, le=100_000)  # ≈ 12 minutes of English speech
    min_chars: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> TextSettings:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars})")
        return self


class ImageSettings(Section):
    """Bounds on the images users supply: avatar photos, scene logos and backgrounds. Checked from the
    file's header before decoding (media/images.py): a decoder allocates what the header announces."""

    max_pixels: int = Field(40_000_000, ge=1, le=1 << 30)  # 40 MP decodes to 160 MB as BGRA; OpenCV's own cap is 2^30


class TtsSettings(Section):
    """How the neural voice runs (voices themselves are templates in config/voices.yaml)."""

    threads: int = Field(0, ge=0, le=256)  # ONNX Runtime threads for Kokoro; 0: every core


class MotionSettings(Section):
    seed: int = 7
    anticipation_s: float = Field(0.04, ge=0.0, le=0.5)
    min_shape_s: float = Field(0.06, ge=0.0, le=1.0)
    closure_lead_s: float = Field(0.02, ge=0.0, le=0.5)
    pause_rest_s: float = Field(0.22, ge=0.0, le=5.0)
    smoothing_frames: float = Field(0.6, ge=0.0, le=10.0)
    loudness_weight: Fraction = 0.85
    blink_interval_s: tuple[Positive, Positive] = (2.2, 5.5)
    blink_duration_s: tuple[Positive, Positive] = (0.12, 0.3)
    head_yaw_deg: Degrees = 2.0
    head_pitch_deg: Degrees = 1.2
    head_roll_deg: Degrees = 0.8
    nod_deg: Degrees = 1.6  # head dips this much on an accented word, and comes back
    brow_raise: Fraction = 0.7  # brow raise on an accent (0..1 of the avatar's full raise)
    brow_raise_share: Fraction = 0.45  # share of accents that also raise the brows (questions always do)
    brow_tone: Fraction = 0.3  # brows lift this much (at most) with the voice between accents

    @model_validator(mode="after")
    def _ranges_ordered(self) -> MotionSettings:
        for name in ("blink_interval_s", "blink_duration_s"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} must be [shortest, longest], got [{low}, {high}]")
        return self


class FaceSettings(Section):
    detector_min_score: Fraction = 0.55
    min_face_px: int = Field(80, ge=16)
    max_work_px: int = Field(640, ge=128, le=4096)


class DriverVideoSettings(Section):
    """Reading motion from a recorded face video (`dhf render --driver-video clip.mp4`)."""

    max_seconds: Positive = 600.0  # longer clips must be split, like long scripts
    max_missing_ratio: Fraction = 0.2  # refuse a clip whose face is missing in more frames than this
    jaw_full_open_ratio: Positive = 0.35  # inner-lip gap / interocular distance that counts as jaw_open = 1
    analysis_height: int = Field(540, ge=120, le=2160)  # frames are scaled to this height for landmarks
    max_head_deg: Degrees = 20.0  # head rotation read from the clip is clipped to this
    max_jump_ratio: Positive = 3.0  # a frame-to-frame change this many times the clip's 90th percentile is a cut
    min_jump_grey: Positive = 12.0  # ... and at least this mean grey-level change (thumbnail) to count


class SpeakingSettings(Section):
    """Checks of a speaking recording (personal avatar); each refusal names the value and this threshold."""

    min_seconds: Positive = 60.0
    max_seconds: Positive = 180.0
    min_face_px: int = Field(256, ge=16)  # face width in the recording's pixels (median over frames)
    max_head_deg: Degrees = 20.0  # median yaw/pitch/roll (frontal)
    max_motion: Positive = 0.15  # face-centre drift (99th percentile), as a share of the face width (steady)
    max_missing_ratio: Fraction = 0.05  # frames without a face
    min_speech_ratio: Fraction = 0.3  # share of 50 ms audio windows louder than speech_dbfs
    speech_dbfs: float = -40.0
    min_viseme_frames: int = Field(10, ge=1)  # every viseme class seen in at least this many frames
    max_light_drift: Fraction = 0.12  # face luminance: 95th-5th percentile over its median (lighting stable)
    min_idle_seconds: Positive = 1.0  # the longest quiet stretch becomes the idle loop (at least this long)
    idle_seconds: Positive = 6.0  # ... and at most this long
    # Every frame of the mouth bank against the reference frame: dlib's same-person threshold (as the
    # render's identity gate, quality.identity.max_distance); above it the recording shows another person.
    max_identity_distance: Positive = 0.6
    face_search_seconds: Positive = 0.5  # every frame is searched for a second face; this often in tiles too


class EnrollmentSettings(Section):
    """Photo checks of `dhf avatar add`; each refusal names the measured value and this threshold."""

    min_face_px: int = Field(256, ge=16)  # face width across the cheeks, in photo pixels
    max_yaw_deg: Degrees = 25.0
    max_pitch_deg: Degrees = 25.0
    max_roll_deg: Degrees = 25.0
    min_eye_openness: float = Field(0.04, ge=0.0)  # dark iris area per eye width²; closed eyes ~0
    min_sharpness: float = Field(40.0, ge=0.0)  # variance of the Laplacian of the face at <= 160 px wide
    exposure_range: tuple[float, float] = (50.0, 215.0)  # mean face luminance allowed (0..255)
    max_clipped_ratio: Fraction = 0.2  # share of face pixels at black (<= 5) or white (>= 250)
    same_person_distance: Positive = 0.5  # identity embeddings closer than this: probably the same person
    thumbnail_px: int = Field(256, ge=32, le=2048)
    max_idle_seconds: Positive = 10.0  # an idle-loop video avatar: longest clip accepted
    max_idle_motion: Positive = 0.06  # face-centre drift in the loop, as a share of the face width
    speaking: SpeakingSettings = SpeakingSettings()  # `dhf avatar add REC.mp4 --speaking` (personal avatars)

    @model_validator(mode="after")
    def _exposure_ordered(self) -> EnrollmentSettings:
        low, high = self.exposure_range
        if not 0 <= low < high <= 255:
            raise ValueError(f"exposure_range must be [low, high] within 0..255, got [{low}, {high}]")
        return self


class MonitorLimits(Section):
    """Base of one quality monitor's settings section (`quality.<monitor>`): its thresholds. The
    section's name is the monitor's module in quality/ (`quality.identity` ↔ quality/identity.py),
    which is how the monitor is found (quality/registry.py)."""


class LipSyncLimits(MonitorLimits):
    min_correlation: float = Field(0.4, ge=-1.0, le=1.0)
    min_correlation_short: float = Field(0.25, ge=-1.0, le=1.0)  # for clips of <= 40 frames
    short_clip_frames: int = Field(150, ge=41)  # from this length on the full threshold applies
    max_lag_ms: float = Field(80.0, ge=0.0, le=1000.0)
    offset_min_frames: int = Field(50, ge=0)  # the offset is judged on clips of at least this many frames
    closure_min_rate: Fraction = 0.8
    closure_min_phones: int = Field(3, ge=1)  # fewer P/B/M phones than this: closure not judged


class IdentityLimits(MonitorLimits):
    max_distance: Positive = 0.6
    max_alarm_ratio: Fraction = 0.2
    sample_fps: float = Field(0.5, gt=0.0, le=120.0)


class PoseLimits(MonitorLimits):
    gate_yaw_deg: Degrees = 60.0
    gate_pitch_deg: Degrees = 45.0
    gate_roll_deg: Degrees = 45.0
    gate_action: Literal["interpolate", "drop"] = "interpolate"
    max_gated_ratio: Fraction = 0.05


class StabilityLimits(MonitorLimits):
    flicker_max: Positive = 1.0
    jitter_max: Positive = 0.012  # rigid landmarks' miss of smooth motion, per interocular distance (median)


class ColorLimits(MonitorLimits):
    max_drift: Positive = 3.0
    max_reference_delta: Positive = 8.0


class ArtifactLimits(MonitorLimits):
    seam_max: Positive = 0.38  # straight discontinuity of the upper head motion (clean renders <= 0.26)
    interior_black_max: Fraction = 0.35  # near-black share of an open mouth
    rim_black_max: Fraction = 0.3  # near-black share along the inner lips
    chin_min_correlation: float = Field(0.2, ge=-1.0, le=1.0)  # chin drop vs mouth opening
    frozen_mouth_motion: float = Field(0.03, ge=0.0)  # mouth-opening spread above which the chin must follow
    frozen_eyes_after_s: Positive = 20.0  # a video this long with no blink has frozen eyes


# The flat keys of `quality:` before each monitor had its own section (issue 27), still accepted in a
# user's YAML: old key -> (section, key). See docs/decisions.md, "Monitors".
FLAT_QUALITY_KEYS: dict[str, tuple[str, str]] = {
    "lipsync_min_correlation": ("lipsync", "min_correlation"),
    "lipsync_min_correlation_short": ("lipsync", "min_correlation_short"),
    "short_clip_frames": ("lipsync", "short_clip_frames"),
    "lipsync_max_lag_ms": ("lipsync", "max_lag_ms"),
    "offset_min_frames": ("lipsync", "offset_min_frames"),
    "closure_min_rate": ("lipsync", "closure_min_rate"),
    "closure_min_phones": ("lipsync", "closure_min_phones"),
    "identity_max_distance": ("identity", "max_distance"),
    "identity_max_alarm_ratio": ("identity", "max_alarm_ratio"),
    "identity_sample_fps": ("identity", "sample_fps"),
    "pose_gate_yaw_deg": ("pose", "gate_yaw_deg"),
    "pose_gate_pitch_deg": ("pose", "gate_pitch_deg"),
    "pose_gate_roll_deg": ("pose", "gate_roll_deg"),
    "pose_gate_action": ("pose", "gate_action"),
    "pose_max_gated_ratio": ("pose", "max_gated_ratio"),
    "flicker_max": ("stability", "flicker_max"),
    "jitter_max": ("stability", "jitter_max"),
    "color_max_drift": ("color", "max_drift"),
    "color_max_reference_delta": ("color", "max_reference_delta"),
    "seam_max": ("artifacts", "seam_max"),
    "interior_black_max": ("artifacts", "interior_black_max"),
    "rim_black_max": ("artifacts", "rim_black_max"),
    "chin_min_correlation": ("artifacts", "chin_min_correlation"),
    "frozen_mouth_motion": ("artifacts", "frozen_mouth_motion"),
    "frozen_eyes_after_s": ("artifacts", "frozen_eyes_after_s"),
}


class QualitySettings(Section):
    """The quality gate (config/quality.yaml, documented there): what every monitor shares, and one
    section of thresholds per monitor. Each `MonitorLimits` field is a monitor: its name is the
    monitor's module in quality/."""

    analysis_height: int = Field(360, ge=120, le=2160)
    fallback: Literal["none", "reduced_motion", "still"] = "none"
    lipsync: LipSyncLimits = LipSyncLimits()
    identity: IdentityLimits = IdentityLimits()
    pose: PoseLimits = PoseLimits()
    stability: StabilityLimits = StabilityLimits()
    color: ColorLimits = ColorLimits()
    artifacts: ArtifactLimits = ArtifactLimits()

    @model_validator(mode="before")
    @classmethod
    def _flat_keys(cls, data: object) -> object:
        """A flat key of the old layout (`seam_max: 0.4`) sets its monitor's key (`artifacts.seam_max`)
        and wins over that section's value: the packaged defaults are nested, so a flat key always
        comes from the user's file, which is read last."""
        if not isinstance(data, dict) or not FLAT_QUALITY_KEYS.keys() & data.keys():
            return data
        nested = {key: value for key, value in data.items() if key not in FLAT_QUALITY_KEYS}
        for old, value in data.items():
            if old in FLAT_QUALITY_KEYS:
                section, key = FLAT_QUALITY_KEYS[old]
                current = nested.get(section, {})
                current = current.model_dump() if isinstance(current, BaseModel) else dict(current or {})
                nested[section] = {**current, key: value}
        return nested

    def monitor_sections(self) -> dict[str, MonitorLimits]:
        """Every monitor's section by name, in the order they are declared (and judged)."""
        return {
            name: value for name in type(self).model_fields if isinstance(value := getattr(self, name), MonitorLimits)
        }


class PostSettings(Section):
    portrait_height_ratio: float = Field(1.0, gt=0.1, le=1.0)
    background: Literal["blur", "solid"] = "blur"
    background_color: tuple[int, int, int] = (38, 42, 48)
    upscale_filter: Literal["cubic", "lanczos"] = "cubic"
    sharpen_amount: float = Field(0.35, ge=0.0, le=3.0)
    color_match_strength: Fraction = 1.0
    smoother_min_cutoff_hz: Positive = 1.5
    smoother_beta: float = Field(0.5, ge=0.0)

    @model_validator(mode="after")
    def _colour_in_range(self) -> PostSettings:
        if not all(0 <= channel <= 255 for channel in self.background_color):
            raise ValueError(f"background_color channels must be 0..255, got {list(self.background_color)}")
        return self


class LabelSettings(Section):
    text: str = Field("AI生成 / AI-generated", min_length=1)
    fonts: tuple[ExpandedPath, ...] = ()
    height_ratio: float = Field(0.036, ge=0.02, le=0.2)  # the label can be resized, never hidden
    margin_ratio: float = Field(0.05, ge=0.0, le=0.2)
    opacity: float = Field(0.85, ge=0.6, le=1.0)

    @model_validator(mode="after")
    def _says_ai(self) -> LabelSettings:
        if "AI" not in self.text:
            raise ValueError(f"text must say 'AI' (it is the AI-generated label), got {self.text!r}")
        return self


class ProvenanceSettings(Section):
    """Machine-readable AI marks (README: Compliance). None of them can be switched off."""

    provider: str = Field("Digital Human Factory", min_length=1)
    software: str = Field("dhf", min_length=1)
    watermark_strength: float = Field(2.0, ge=1.0, le=8.0)  # grey levels of the luma offset
    # The organization's C2PA signing certificate chain (PEM, signer first) and its private key. When
    # unset, a TEST chain generated under <home>/provenance/test-chain signs (marked as such).
    signing_certificate: ExpandedPath | None = None
    signing_key: ExpandedPath | None = None
    signing_algorithm: Literal["es256", "es384", "ps256"] = "es256"
    trust_anchors: ExpandedPath | None = None  # PEM roots `dhf verify` trusts; the test root when no chain

    @model_validator(mode="after")
    def _chain_complete(self) -> ProvenanceSettings:
        if (self.signing_certificate is None) != (self.signing_key is None):
            raise ValueError("signing_certificate and signing_key must be set together")
        return self


class FactorySettings(Section):
    """Scale-out on a Prefect work pool (`dhf pool setup|worker`, `dhf batch --pool`)."""

    pool: str = Field("dhf-render", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    renders_per_worker: int = Field(1, ge=1, le=64)  # a render keeps ~1.5 cores busy
    heartbeat_seconds: int = Field(30, ge=30)  # Prefect's minimum is 30
    crashed_after_seconds: int = Field(90, ge=60)  # silent this long: marked Crashed and resubmitted
    pending_timeout_seconds: int = Field(300, ge=10)  # claimed but never started: resubmitted
    resubmit_attempts: int = Field(2, ge=0, le=10)
    poll_seconds: float = Field(2.0, gt=0.0, le=60.0)  # how often the batch flow reads its runs' states
    worker_query_seconds: float = Field(2.0, gt=0.0, le=60.0)  # Prefect's default 10 s idles workers

    @model_validator(mode="after")
    def _heartbeat_margin(self) -> FactorySettings:
        if self.crashed_after_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("crashed_after_seconds must be at least twice heartbeat_seconds")
        return self


class ApiSettings(Section):
    """Where the REST API (`dhf api`) listens, and its limits; each violation is a 4xx with a JSON error."""

    # Defaults of `dhf api --host/--port`, so that a config file or DHF_API__PORT can set them.
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(65536, ge=1024)
    rate_per_minute: int = Field(120, ge=1)
    max_active_jobs_per_key: int = Field(20, ge=1)
    max_active_jobs: int = Field(100, ge=1)
    concurrent_renders: int = Field(1, ge=1, le=64)
    sync_max_chars: int = Field(300, ge=1)
    sync_timeout_seconds: Positive = 300.0
    executor: Literal["local", "pool"] = "local"  # local: in the API process; pool: Prefect work pool


class ChunkingSettings(Section):
    """Long videos rendered in parallel chunks (pipeline/chunked.py, README: Long videos).

    Why speech seconds and not characters: the text is spoken once, whole, before anything is
    rendered (one TTS pass, one audio track); its duration is then known exactly and is what the
    render time scales with."""

    min_seconds: Positive = 90.0  # speech at least this long is rendered in chunks (≈ 1300 characters)
    chunk_seconds: float = Field(120.0, ge=1.0)  # longest chunk; more chunks than workers only beyond this
    workers: int = Field(0, ge=0, le=64)  # chunk processes per render; 0 = one per 2 CPU cores, at least 2
    executor: Literal["local", "pool"] = "local"  # pool: chunks are flow runs on the Prefect work pool
    min_pause_s: float = Field(0.12, ge=0.0, le=5.0)  # a cut goes into a silence at least this long
    sentence_preference_s: float = Field(2.0, ge=0.0)  # a sentence end this much farther away still wins


class StreamAdmissionSettings(Section):
    """Admission control for streamed answers (streaming/admission.py): a stream starts only when the
    server's measured rendering throughput can keep it ahead of playback; otherwise 503 + Retry-After."""

    max_streams: int = Field(4, ge=1, le=64)  # hard cap on streams rendering at once, whatever the throughput
    realtime_margin: float = Field(1.15, ge=1.0, le=4.0)  # a stream needs fps x this frames/s to never stall
    start_budget_s: Positive = 2.0  # a stream must be able to release its first segment within this
    min_retry_after_s: int = Field(1, ge=1)
    # Until a stream has been measured (a cold server): the throughput and first-release time assumed.
    # Conservative on purpose: 40 frames/s admits one 25 fps stream at a time until measurements say more.
    cold_throughput_fps: Positive = 40.0
    cold_first_release_s: Positive = 1.0


class StreamingSettings(Section):
    """Streamed answers (POST /v1/streams, README "Streamed answers"): HLS with fragmented-MP4
    segments written while the answer renders, each released only after the quality gate scored it."""

    scene: str | None = "app"  # the canvas of a streamed answer (a chat window); None: the classic layout
    canvas_scale: float = Field(0.5, gt=0.0, le=1.0)  # of the scene's canvas: streams are watched small
    work_px: int = Field(448, ge=128, le=1024)  # the reenactor's work image for streams (files: 640)
    segment_seconds: float = Field(0.5, ge=0.2, le=6.0)  # HLS segment length (whole frames)
    first_part_max_words: int = Field(8, ge=1)  # the first part spoken is at most this long (first clause)
    preset: str = "ultrafast"  # x264 preset of the stream's encoder (it must keep up with playback)
    tune: str = "zerolatency"  # no lookahead, no B-frames: a segment closes as soon as its frames are in
    keep_finished_s: int = Field(3600, ge=0)  # stream folders are deleted this long after they end
    prewarm_avatars: list[str] = ["sample"]  # analysed and engine-ready when `dhf api` starts
    admission: StreamAdmissionSettings = StreamAdmissionSettings()


class FusionSettings(Section):
    """The engine's processor chain and where its neural models run (README: Neural processors).

    `processors` is the chain in order; the labeler and the watermarker are always appended after it
    and cannot be listed, so no configuration can drop or move them. Model licences: a model whose
    licence is non-commercial is refused for any purpose or channel listed here as commercial.

    Each registered processor with options has its section here (`fusion.face_enhancer`, ...), an
    instance of the processor's own pydantic `Options` (config/processors.py names the module), read
    as an attribute: `settings.fusion.face_enhancer.blend`."""

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=True)

    processors: tuple[str, ...] = DEFAULT_CHAIN
    providers: tuple[Literal["tensorrt", "cuda", "cpu"], ...] = ()  # empty: TensorRT → CUDA → CPU, as available
    tensorrt_fp16: bool = True
    threads: int = Field(1, ge=0, le=256)  # onnxruntime intra-op threads per model (0: onnxruntime decides)
    commercial_purposes: tuple[str, ...] = ("marketing", "ads", "advertising", "sales", "customer_service")
    commercial_channels: tuple[str, ...] = ("ads", "social", "web", "tv", "app")

    @model_validator(mode="before")
    @classmethod
    def _processor_sections(cls, data: Any) -> Any:
        """Every registered processor's section, validated by its own `Options` (defaults when absent);
        any other key is a typo, refused like one."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        sections = {}
        for name in registry.REGISTRY:
            options = registry.spec(name).options
            if options is not None:
                sections[name] = options
        for key, value in data.items():
            if key not in cls.model_fields and key not in sections:
                raise ValidationError.from_exception_data(
                    cls.__name__, [{"type": "extra_forbidden", "loc": (key,), "input": value}]
                )
        for name, options in sections.items():
            value = data.get(name, {})
            if isinstance(value, options):
                continue
            try:
                data[name] = options.model_validate(value)
            except ValidationError as exc:
                located = [
                    {
                        "type": e["type"],
                        "loc": (name, *e["loc"]),
                        "input": e["input"],
                        **({"ctx": e["ctx"]} if "ctx" in e else {}),
                    }
                    for e in exc.errors()
                ]
                raise ValidationError.from_exception_data(cls.__name__, located) from None  # type: ignore[arg-type]
        return data

    @model_validator(mode="after")
    def _valid_chain(self) -> FusionSettings:
        registry.check_chain(list(self.processors))
        return self

    def options(self, name: str) -> Any:
        """The section of processor `name` (its `Options` instance; None for a processor without one)."""
        return (self.model_extra or {}).get(name)


class GovernanceSettings(Section):
    """Human review before publishing (README: Review before publishing).

    `review: required` holds every video that passed the quality gate in review until a person
    approves it (`dhf review`, `/v1/reviews`, or the paused flow run in the Prefect UI). An avatar's
    licence (`review: required`) or a batch script can require it too; nothing can waive it then.
    A review left undecided for `review_timeout_seconds` counts as rejected.

    Separation of duties: whoever requested a video (OS user, or `api-key:<id>`) cannot approve it;
    `break_glass` names the actors who may anyway, and each such approval is audited as break-glass.
    `audit_witnesses`: append-only files (e.g. on WORM storage) that receive every audit head besides
    `<home>/audit/audit.witness`; `dhf audit verify` fails when the log is shorter than any of them."""

    review: Annotated[Literal["off", "required"], BeforeValidator(_yaml_switch)] = "off"
    review_timeout_seconds: int = Field(259200, ge=1)  # 72 h
    break_glass: list[str] = []
    audit_witnesses: list[Annotated[Path, BeforeValidator(_expand_path)]] = []


# --- branded scenes (README: Scenes) -----------------------------------------------------------------------

SCENE_ASSETS = Path(__file__).resolve().parent  # a scene's relative image path is relative to config/
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
SceneName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]


def _asset_path(value: object) -> object:
    """`~`/`$VAR` expanded; a relative path is relative to the config folder (where the bundled
    templates' images live), not to whatever folder the command runs in."""
    expanded = _expand_path(value)
    if isinstance(expanded, Path):  # a str, so that a report's JSON validates as well as the YAML
        return str(expanded if expanded.is_absolute() else SCENE_ASSETS / expanded)
    return expanded


AssetPath = Annotated[Path, BeforeValidator(_asset_path)]


class SceneBackground(Section):
    """What is behind the person: a solid colour, an image (cover-fitted), or the photo itself blurred
    (the classic look; the person is then not cut out)."""

    kind: Literal["solid", "image", "blur"] = "solid"
    color: HexColor = "#262a30"
    image: AssetPath | None = None
    soften: float = Field(0.0, ge=0.0, le=0.1)  # Gaussian blur of the image, × the canvas's short side

    @model_validator(mode="after")
    def _image_given(self) -> SceneBackground:
        if self.kind == "image" and self.image is None:
            raise ValueError("kind 'image' needs image: <path to a PNG or JPEG>")
        return self


class ScenePerson(Section):
    """Where the person sits: the head-and-shoulders square stands on the bottom edge of the canvas."""

    height: float = Field(0.9, ge=0.3, le=1.5)  # the square's side, × the canvas height
    x: Fraction = 0.5  # the square's centre, × the canvas width
    # Where a side of the square lies inside the canvas, the shoulders are continued past it and fade
    # out (fusion/processors/scene_body.py); false: they only fade at the photo's edge.
    continue_body: bool = True


class SceneLogo(Section):
    image: AssetPath
    corner: Corner = "top-left"
    height: float = Field(0.08, gt=0.0, le=0.5)  # × the canvas's short side
    opacity: Fraction = 1.0


class SceneNameTag(Section):
    """The lower-third name tag: the avatar record's name, and an optional second line."""

    title: str = ""
    align: Literal["left", "center", "right"] = "left"
    y: Fraction = 0.7  # the tag's top, × the canvas height
    size: float = Field(0.035, ge=0.01, le=0.2)  # name text height, × the canvas's short side
    max_width: Fraction = 0.6  # × the canvas width (a longer name is set smaller)
    color: HexColor = "#ffffff"
    plate: HexColor = "#1f3a68"
    accent: HexColor = "#f2a900"
    opacity: Fraction = 0.9


class SceneCaptions(Section):
    """Captions burnt into the frames (the sidecar's cues, at most `max_lines` lines each)."""

    size: float = Field(0.04, ge=0.01, le=0.2)  # text height, × the canvas's short side
    max_lines: int = Field(2, ge=1, le=2)
    max_width: Fraction = 0.86  # × the canvas width
    bottom: Fraction = 0.05  # gap under the caption box, × the canvas height
    color: HexColor = "#ffffff"
    box: HexColor = "#000000"
    box_opacity: Fraction = 0.62


class SceneTemplate(Section):
    """One branded layout: canvas, background, person, logo, name tag, burnt-in captions. Checked
    against the AI label's rectangle when it is used (fusion.processors.scene_layout.layout_scene)."""

    width: EvenSize
    height: EvenSize
    description: str = ""
    margin: float = Field(0.04, ge=0.0, le=0.2)  # safe margin at the canvas edges, × its short side
    background: SceneBackground = SceneBackground()
    person: ScenePerson = ScenePerson()
    logo: SceneLogo | None = None
    name_tag: SceneNameTag | None = None
    captions: SceneCaptions | None = None


class MatteSettings(Section):
    """How the person is separated from the photo's backdrop (vision/matte.py): `u2netp`, the
    pinned U²-Net-p model (soft matte, hair kept; GrabCut when its file is absent), or `grabcut`, no
    weights. The matte is computed once per avatar version, with its face analysis."""

    model: Literal["u2netp", "grabcut"] = "u2netp"


class SceneChoice(Section):
    """Which scene a render uses: the request's (`--scene`), else its channel's, else `name`; none of
    them: the classic layout (`video.width` × `video.height`, the portrait on its blurred copy)."""

    name: SceneName | None = None  # the default scene (and, during a render, the one in use)
    channels: dict[str, SceneName] = {}  # channel → scene, e.g. {web: web, app: app, social: social}


class Settings(Section):
    """Everything a render, a batch, a worker or the API server is configured with."""

    paths: PathSettings = PathSettings()
    video: VideoSettings = VideoSettings()
    text: TextSettings = TextSettings()
    images: ImageSettings = ImageSettings()
    tts: TtsSettings = TtsSettings()
    motion: MotionSettings = MotionSettings()
    face: FaceSettings = FaceSettings()
    driver_video: DriverVideoSettings = DriverVideoSettings()
    enrollment: EnrollmentSettings = EnrollmentSettings()
    quality: QualitySettings = QualitySettings()
    post: PostSettings = PostSettings()
    label: LabelSettings = LabelSettings()
    provenance: ProvenanceSettings = ProvenanceSettings()
    factory: FactorySettings = FactorySettings()
    api: ApiSettings = ApiSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    streaming: StreamingSettings = StreamingSettings()
    fusion: FusionSettings = Field(default_factory=FusionSettings)  # imports the registered processors
    governance: GovernanceSettings = GovernanceSettings()
    scene: SceneChoice = SceneChoice()
    scenes: dict[SceneName, SceneTemplate] = {}
    matte: MatteSettings = MatteSettings()
    # Voice templates and per-language defaults added by a user's --config, merged over config/voices.yaml
    # (validated as VoiceTemplate by config.loader.load_voices; same shape as that file).
    voices: dict[str, dict[str, Any]] = {}
    default_voice: dict[str, str] = {}

    @model_validator(mode="after")
    def _scenes_known(self) -> Settings:
        named = [("scene.name", self.scene.name)] + [(f"scene.channels.{c}", n) for c, n in self.scene.channels.items()]
        for key, name in named:
            if name is not None and name not in self.scenes:
                known = ", ".join(sorted(self.scenes)) or "none"
                raise ValueError(f"{key}: unknown scene '{name}'; defined under scenes: {known}")
        return self

    def for_scene(self, name: str | None) -> Settings:
        """The settings of a render in scene `name` (None: the classic layout): the canvas becomes the
        template's, and `scene.name` says which scene is in use (every stage, chunk and worker reads it)."""
        if name is None:
            return self.model_copy(update={"scene": self.scene.model_copy(update={"name": None})})
        template = self.scenes[name]
        video = self.video.model_copy(update={"width": template.width, "height": template.height})
        return self.model_copy(update={"video": video, "scene": self.scene.model_copy(update={"name": name})})

    @property
    def scene_template(self) -> SceneTemplate | None:
        return self.scenes[self.scene.name] if self.scene.name is not None else None

    def with_section(self, name: str, **changes: object) -> Settings:
        """A copy with one section's values changed, validated like a YAML override."""
        section = getattr(self, name)
        return self.model_copy(update={name: section.with_changes(**changes)})

    def hashable(self) -> dict[str, object]:
        """What decides an output (every section but the machine's paths), for content hashes."""
        # The review gate decides who publishes, not what the video is: it changes no content hash.
        # Nor does the address the API listens on: moving the server to another port re-renders nothing.
        # Nor do the streaming settings: a stream's own canvas and encoder reach its content through the
        # settings it renders with (streaming derives them), never a file render's.
        return self.model_dump(exclude={"paths": True, "governance": True, "api": {"host", "port"}, "streaming": True})


class VoiceTemplate(Section):
    """One speaking voice: which engine, which espeak-ng voice (the whole voice for `espeak`; the
    phonemes for `kokoro`), which Kokoro style or blend of styles, how fast, which phoneme path drives
    the lips."""

    name: str
    language: str = Field(pattern=r"^[a-z]{2,3}$")
    # A module phoneme/<engine>_engine.py (the TTS engine registry, phoneme/engines.py, checks the name
    # and refuses an unknown one before any compute; this layer cannot import it).
    engine: str = Field("espeak", pattern=r"^[a-z][a-z0-9]*$")
    espeak_voice: str = Field(min_length=1)
    rate: int = Field(160, ge=60, le=450)  # espeak-ng: words per minute
    pitch: int = Field(50, ge=0, le=100)  # espeak-ng only
    style: str | dict[str, float] | None = None  # kokoro: a style name, or {style: weight, ...} (a blend)
    speed: float = Field(1.0, ge=0.5, le=2.0)  # kokoro: 1 is the model's own pace
    g2p: Literal["espeak", "arpabet"] = "espeak"

    @model_validator(mode="after")
    def _engine_options(self) -> VoiceTemplate:
        if self.engine == "kokoro":
            if self.style is None or self.style == {}:
                raise ValueError("a kokoro voice needs a style (e.g. style: jf_gongitsune)")
            if isinstance(self.style, dict) and any(weight <= 0 for weight in self.style.values()):
                raise ValueError("style blend weights must be positive")
        elif self.style is not None:
            raise ValueError("style applies to kokoro voices only; remove it or set engine: kokoro")
        return self
