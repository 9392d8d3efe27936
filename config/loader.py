"""Load `config/*.yaml` into frozen dataclasses.

Why typed objects: stages take exactly the options they need, a typo in a YAML key fails loudly at
load time instead of silently using a default, and tests can build settings without touching files.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONFIG_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    """A configuration file is missing, malformed or names an unknown key."""


@dataclass(frozen=True)
class PathSettings:
    home: Path = Path("~/.local/share/dhf")
    library: Path | None = None  # the avatar library root; default <home>/avatars

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


@dataclass(frozen=True)
class VideoSettings:
    width: int = 1920
    height: int = 1080
    fps: int = 25
    crf: int = 20
    preset: str = "veryfast"
    audio_bitrate: str = "128k"
    encoder_threads: int = 0


@dataclass(frozen=True)
class TextSettings:
    max_chars: int = 2000
    min_chars: int = 1


@dataclass(frozen=True)
class MotionSettings:
    seed: int = 7
    anticipation_s: float = 0.04
    min_shape_s: float = 0.06
    closure_lead_s: float = 0.02
    pause_rest_s: float = 0.22
    smoothing_frames: float = 0.6
    loudness_weight: float = 0.85
    blink_interval_s: tuple[float, float] = (2.2, 5.5)
    blink_duration_s: float = 0.22
    head_yaw_deg: float = 2.0
    head_pitch_deg: float = 1.2
    head_roll_deg: float = 0.8


@dataclass(frozen=True)
class FaceSettings:
    detector_min_score: float = 0.55
    min_face_px: int = 80
    max_work_px: int = 640


@dataclass(frozen=True)
class DriverVideoSettings:
    """Reading motion from a recorded face video (`dhf render --driver-video clip.mp4`)."""

    max_seconds: float = 600.0  # longer clips must be split, like long scripts
    max_missing_ratio: float = 0.2  # refuse a clip whose face is missing in more frames than this
    jaw_full_open_ratio: float = 0.35  # inner-lip gap / interocular distance that counts as jaw_open = 1
    analysis_height: int = 540  # frames are scaled to this height before landmark detection
    max_head_deg: float = 12.0  # head rotation read from the clip is clipped to this


@dataclass(frozen=True)
class EnrollmentSettings:
    """Photo checks of `dhf avatar add`; each refusal names the measured value and this threshold."""

    min_face_px: int = 256  # face width across the cheeks, in photo pixels
    max_yaw_deg: float = 25.0
    max_pitch_deg: float = 25.0
    max_roll_deg: float = 25.0
    min_eye_openness: float = 0.04  # dark iris area around the eyes per eye width²; closed eyes measure ~0
    min_sharpness: float = 40.0  # variance of the Laplacian of the face scaled to <= 160 px wide
    exposure_range: tuple[float, float] = (50.0, 215.0)  # mean face luminance allowed (0..255)
    max_clipped_ratio: float = 0.2  # share of face pixels at black (<= 5) or white (>= 250)
    same_person_distance: float = 0.5  # identity embeddings closer than this probably show the same person
    thumbnail_px: int = 256
    max_idle_seconds: float = 10.0  # an idle-loop video avatar: longest clip accepted
    max_idle_motion: float = 0.06  # face-centre drift in the loop, as a share of the face width


FALLBACKS = ("none", "reduced_motion", "still")
POSE_ACTIONS = ("interpolate", "drop")


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the quality monitors (config/quality.yaml, documented there)."""

    analysis_height: int = 360
    lipsync_min_correlation: float = 0.4
    lipsync_max_lag_ms: float = 80.0
    closure_min_rate: float = 0.8
    identity_max_distance: float = 0.6
    identity_max_alarm_ratio: float = 0.1
    identity_sample_fps: float = 1.0
    pose_gate_yaw_deg: float = 60.0
    pose_gate_pitch_deg: float = 45.0
    pose_gate_roll_deg: float = 45.0
    pose_gate_action: str = "interpolate"
    pose_max_gated_ratio: float = 0.05
    flicker_max: float = 1.0
    jitter_max: float = 0.1
    color_max_drift: float = 3.0
    color_max_reference_delta: float = 8.0
    fallback: str = "none"

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ConfigError(f"quality.fallback must be one of {FALLBACKS}, not {self.fallback!r}")
        if self.pose_gate_action not in POSE_ACTIONS:
            raise ConfigError(f"quality.pose_gate_action must be one of {POSE_ACTIONS}, not {self.pose_gate_action!r}")


UPSCALE_FILTERS = ("cubic", "lanczos")


@dataclass(frozen=True)
class PostSettings:
    portrait_height_ratio: float = 1.0
    background: str = "blur"
    background_color: tuple[int, int, int] = (38, 42, 48)
    upscale_filter: str = "cubic"
    sharpen_amount: float = 0.35
    color_match_strength: float = 1.0
    smoother_min_cutoff_hz: float = 1.5
    smoother_beta: float = 0.5

    def __post_init__(self) -> None:
        if self.upscale_filter not in UPSCALE_FILTERS:
            raise ConfigError(f"post.upscale_filter must be one of {UPSCALE_FILTERS}, not {self.upscale_filter!r}")
        if self.background not in ("blur", "solid"):
            raise ConfigError(f"post.background must be 'blur' or 'solid', not {self.background!r}")


@dataclass(frozen=True)
class LabelSettings:
    text: str = "AI生成 / AI-generated"
    fonts: tuple[str, ...] = ()
    height_ratio: float = 0.036
    margin_ratio: float = 0.05
    opacity: float = 0.85


@dataclass(frozen=True)
class FactorySettings:
    """Scale-out on a Prefect work pool (`dhf pool setup|worker`, `dhf batch --pool`)."""

    pool: str = "dhf-render"  # work pool name; the render deployment is `render-variant/<pool>`
    renders_per_worker: int = 1  # flow runs one worker process runs at once (a render keeps ~1.5 cores busy)
    heartbeat_seconds: int = 30  # render flow runs report alive this often (Prefect's minimum is 30)
    crashed_after_seconds: int = 90  # no heartbeat for this long: the run is marked Crashed and resubmitted
    pending_timeout_seconds: int = 300  # a run a worker claimed but never started is resubmitted after this
    resubmit_attempts: int = 2  # crashed runs (a worker or its machine died) are resubmitted this often
    poll_seconds: float = 2.0  # how often the batch flow reads its render runs' states
    worker_query_seconds: float = 2.0  # how often an idle worker asks for work (Prefect's default: 10)

    def __post_init__(self) -> None:
        if self.heartbeat_seconds < 30:
            raise ConfigError("factory.heartbeat_seconds must be >= 30 (Prefect's minimum)")
        if self.crashed_after_seconds < 2 * self.heartbeat_seconds:
            raise ConfigError("factory.crashed_after_seconds must be at least twice factory.heartbeat_seconds")
        if self.renders_per_worker < 1:
            raise ConfigError("factory.renders_per_worker must be >= 1")


@dataclass(frozen=True)
class ApiSettings:
    """Limits of the REST API (`dhf api`); each violation is a 4xx with a JSON error."""

    max_body_bytes: int = 65536  # request bodies (a batch script included)
    rate_per_minute: int = 120  # requests per API key per minute (429 beyond, with Retry-After)
    max_active_jobs_per_key: int = 20  # queued + running jobs one key may have
    max_active_jobs: int = 100  # for the whole server
    concurrent_renders: int = 1  # renders at once in this server process (a render keeps ~1.5 cores busy)
    sync_max_chars: int = 300  # POST /generate_digital_human renders short texts only
    sync_timeout_seconds: float = 300.0  # then answers 504 with the job id to poll
    executor: str = "local"  # local: render in the API process; pool: on the Prefect work pool (factory.pool)

    def __post_init__(self) -> None:
        if self.executor not in ("local", "pool"):
            raise ConfigError(f"api.executor must be 'local' or 'pool', not {self.executor!r}")


SIGNING_ALGORITHMS = ("es256", "es384", "ps256")


@dataclass(frozen=True)
class ProvenanceSettings:
    """Machine-readable AI marks (README: Compliance). None of them can be switched off."""

    provider: str = "Digital Human Factory"
    software: str = "dhf"
    watermark_strength: float = 2.0  # grey levels of the invisible watermark's luma offset (>= 1)
    # The organization's C2PA signing certificate chain (PEM, signer first) and its private key. When
    # unset, a TEST chain generated under <home>/provenance/test-chain signs (marked as such).
    signing_certificate: Path | None = None
    signing_key: Path | None = None
    signing_algorithm: str = "es256"
    trust_anchors: Path | None = None  # PEM roots `dhf verify` trusts; the test root only when no chain is set

    def __post_init__(self) -> None:
        if self.watermark_strength < 1.0:
            raise ConfigError("provenance.watermark_strength must be >= 1 (the watermark cannot be switched off)")
        if (self.signing_certificate is None) != (self.signing_key is None):
            raise ConfigError("provenance.signing_certificate and provenance.signing_key must be set together")
        if self.signing_algorithm not in SIGNING_ALGORITHMS:
            raise ConfigError(f"provenance.signing_algorithm must be one of {SIGNING_ALGORITHMS}")


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    video: VideoSettings = field(default_factory=VideoSettings)
    text: TextSettings = field(default_factory=TextSettings)
    motion: MotionSettings = field(default_factory=MotionSettings)
    face: FaceSettings = field(default_factory=FaceSettings)
    driver_video: DriverVideoSettings = field(default_factory=DriverVideoSettings)
    enrollment: EnrollmentSettings = field(default_factory=EnrollmentSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    post: PostSettings = field(default_factory=PostSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    provenance: ProvenanceSettings = field(default_factory=ProvenanceSettings)
    factory: FactorySettings = field(default_factory=FactorySettings)
    api: ApiSettings = field(default_factory=ApiSettings)


@dataclass(frozen=True)
class VoiceTemplate:
    """One speaking voice: which espeak-ng voice, how fast, which phoneme path drives the lips."""

    name: str
    language: str
    espeak_voice: str
    rate: int = 160
    pitch: int = 50
    g2p: str = "espeak"


T = TypeVar("T")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _build(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Build dataclass `cls` from a YAML mapping, refusing unknown keys (typos)."""
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in section '{where}'; known: {sorted(known)}")
    converted: dict[str, Any] = {}
    for name, raw in values.items():
        default = getattr(cls(), name) if _has_defaults(cls) else None
        if isinstance(default, Path) or ("Path" in str(known[name].type) and raw is not None):
            converted[name] = Path(os.path.expanduser(str(raw)))
        elif isinstance(default, tuple):
            converted[name] = tuple(raw)
        else:
            converted[name] = raw
    return cls(**converted)


def _has_defaults(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(override_file: Path | None = None, home: Path | None = None) -> Settings:
    """Defaults from `config/default.yaml`, then `override_file`, then DHF_HOME / `home`."""
    data = _deep_merge(_read_yaml(CONFIG_DIR / "default.yaml"), _read_yaml(CONFIG_DIR / "quality.yaml"))
    if override_file is not None:
        data = _deep_merge(data, _read_yaml(Path(override_file)))
    sections = {f.name: f.type for f in dataclasses.fields(Settings)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; known: {sorted(sections)}")
    classes = {
        "paths": PathSettings,
        "video": VideoSettings,
        "text": TextSettings,
        "motion": MotionSettings,
        "face": FaceSettings,
        "driver_video": DriverVideoSettings,
        "enrollment": EnrollmentSettings,
        "quality": QualitySettings,
        "post": PostSettings,
        "label": LabelSettings,
        "provenance": ProvenanceSettings,
        "factory": FactorySettings,
        "api": ApiSettings,
    }
    built = {name: _build(cls, data.get(name) or {}, name) for name, cls in classes.items()}
    env_home = os.environ.get("DHF_HOME")
    chosen_home = home or (Path(env_home) if env_home else None)
    if chosen_home is not None:
        home_path = Path(os.path.expanduser(str(chosen_home)))
    else:
        home_path = Path(os.path.expanduser(str(built["paths"].home)))
    library = built["paths"].library
    library_path = Path(os.path.expanduser(str(library))) if library else None
    built["paths"] = PathSettings(home=home_path, library=library_path)
    return Settings(**built)


def load_voices(path: Path | None = None) -> tuple[dict[str, VoiceTemplate], dict[str, str]]:
    """Return (voice name → template, language → default voice name)."""
    data = _read_yaml(path or CONFIG_DIR / "voices.yaml")
    voices = {
        name: _build(VoiceTemplate, {"name": name, **spec}, f"voices.{name}")
        for name, spec in (data.get("voices") or {}).items()
    }
    defaults = dict(data.get("default_voice") or {})
    for language, voice in defaults.items():
        if voice not in voices:
            raise ConfigError(f"default voice '{voice}' for language '{language}' is not defined")
    return voices, defaults


def load_visemes_table(path: Path | None = None) -> dict[str, Any]:
    """The raw viseme table; `phoneme.visemes.VisemeTable` turns it into typed shapes."""
    return _read_yaml(path or CONFIG_DIR / "visemes.yaml")
