"""The render report: a typed record of one render, written beside its video as `<name>.report.json`.

Why a model and not a dict: the pipeline writes it, the REST API serves it with its schema in
OpenAPI, the batch manifest and the audit log read their figures from it, and a field renamed in
one place must fail everywhere at once. Fields holding server paths are listed in `PATH_FIELDS`, so
the API can serve the report without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from config import Settings
from config.files import write_text_atomic
from config.settings import MotionSettings, PostSettings, SceneTemplate, VideoSettings
from pipeline.request import ValidatedRequest, model_hashes
from quality.scores import QualityReport


class ReportPart(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestPart(ReportPart):
    text: str
    spoken_text: str
    language: str
    voice: str
    channel: str
    purpose: str


class AvatarPart(ReportPart):
    id: str
    version: int
    photo_sha256: str


class LicenseScope(ReportPart):
    languages: list[str]
    channels: list[str]
    purposes: list[str]


class LicensePart(ReportPart):
    license_id: str
    holder: str
    valid_until: str
    scope: LicenseScope
    sha256: str


class VoicePart(ReportPart):
    """The voice that spoke: template, engine, its version, the model's pinned sha256, licence, style."""

    template: str
    engine: str
    version: str
    model_sha256: str | None = None
    license: str = ""
    style: str = ""


class SpeechPart(ReportPart):
    source: str = "tts"  # tts, or where a recorded driver's audio came from
    key: str | None = None
    duration_s: float | None = None
    wav: str | None = None
    audio_sha256: str
    words: int | None = None
    phones: int | None = None
    voice: VoicePart | None = None  # None: a recorded driver's audio
    sentences_synthesized: int | None = None  # neural voice: sentences the model ran for this render
    sentences_cached: int | None = None  # ... and sentences taken from the sentence cache


class DriverPart(ReportPart):
    source: Literal["synthetic", "recorded"]
    key: str
    video: str | None = None  # the canonical-face driver video (synthetic drivers)
    clip: str | None = None  # the recorded clip (recorded drivers)
    clip_sha256: str | None = None
    track: str | None = None
    track_sha256: str


class WatermarkPart(ReportPart):
    scheme: str
    payload: str


class C2paPart(ReportPart):
    signed: bool
    test_certificate: bool
    algorithm: str


class AuditAnchorPart(ReportPart):
    """The audit log's head when the render was authorized (also in the C2PA manifest)."""

    entry: int
    hash: str


class ProvenancePart(ReportPart):
    content_id: str
    watermark: WatermarkPart
    c2pa: C2paPart
    sign_seconds: float
    watermark_ms_per_frame: float
    audit_anchor: AuditAnchorPart | None = None


class FallbackPart(ReportPart):
    kind: Literal["reduced_motion", "still"]
    quality: QualityReport
    published: bool
    rejected: str | None = None


class VideoPart(ReportPart):
    duration_s: float
    width: int
    height: int
    fps: int


class ScenePart(ReportPart):
    """The scene a video was rendered in (None in the report: the classic layout)."""

    name: str
    template: SceneTemplate

    @classmethod
    def of(cls, name: str | None, template: SceneTemplate | None) -> ScenePart | None:
        return cls(name=name, template=template) if name is not None and template is not None else None


class SettingsPart(ReportPart):
    video: VideoSettings
    motion: MotionSettings
    post: PostSettings


class SyncPart(ReportPart):
    correlation: float
    lag_ms: float


class BatchPart(ReportPart):
    script: str
    name: str
    item: str
    shared_text: bool


class ChunksPart(ReportPart):
    """How a long render was split (pipeline.chunked): where the cuts are and what each chunk cost."""

    count: int
    cuts: list[int]  # first frame of every chunk after the first
    runner: str  # LocalRunner: processes on the rendering machine; PoolChunkRunner: work-pool flow runs
    chunk_seconds: list[float]
    chunk_peak_rss_mb: list[float]
    render_seconds: float
    join_seconds: float


class ReviewPart(ReportPart):
    """A human review of this video (pipeline.review): pending until a person decides, or timed out."""

    id: str
    state: Literal["pending", "approved", "rejected"]
    deadline: str
    reviewer: str | None = None
    comment: str = ""
    decided: str | None = None
    audit_entry: int | None = None


class StreamPart(ReportPart):
    """A streamed answer (streaming/): how it was released to the viewer."""

    stream_id: str
    first_release_s: float | None  # from the request to the first released segment
    segments: int  # released, exactly the ones this video is joined from
    mode: str  # normal, or the fallback the last released segments were rendered in
    parts: int  # spoken parts (first clause, then sentences)
    part_starts: list[int] = Field(default_factory=list)  # the first frame of each part
    failure: dict[str, Any] | None = None  # the gate's finding on the segment that was not released


class RenderReport(ReportPart):
    """Everything about one render. `published` says whether the video under `output` is this one."""

    output: str | None
    published: bool
    sha256: str | None
    request: RequestPart
    avatar: AvatarPart
    license: LicensePart
    models: dict[str, str]
    stage_seconds: dict[str, float]
    cache_hits: dict[str, bool]
    settings: SettingsPart
    user: str
    created: str
    frames: int
    processors: list[str]
    providers: dict[str, str] = Field(default_factory=dict)  # model → execution provider it ran on
    process_ms_per_frame: float
    metadata: dict[str, str]
    provenance: ProvenancePart
    speech: SpeechPart
    driver: DriverPart
    quality: QualityReport
    rejected: str | None = None
    fallback: FallbackPart | None = None
    video: VideoPart
    captions: dict[str, str] = Field(default_factory=dict)
    driver_audio_sync: SyncPart
    batch_key: str | None = None
    batch: BatchPart | None = None
    chunks: ChunksPart | None = None  # a long render made in parallel chunks
    review: ReviewPart | None = None  # held for a person's approval (governance.review)
    scene: ScenePart | None = None  # the branded scene (README: Scenes); None: the classic layout
    stream: StreamPart | None = None  # a streamed answer's release figures (streaming/)

    def save(self, path: Path) -> Path:
        write_text_atomic(path, self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> RenderReport:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def without_paths(self) -> RenderReport:
        """The report as a client of the API sees it: no server paths (they reveal the layout)."""
        return self.model_copy(
            update={
                "output": None,
                "rejected": None,
                "captions": {},
                "speech": self.speech.model_copy(update={"wav": None}),
                "driver": self.driver.model_copy(update={"video": None, "clip": None, "track": None}),
                "fallback": self.fallback.model_copy(update={"rejected": None}) if self.fallback else None,
                "batch": self.batch.model_copy(update={"script": ""}) if self.batch else None,
            }
        )


def request_parts(validated: ValidatedRequest, settings: Settings) -> dict[str, Any]:
    """The report's `request`, `avatar`, `license` and `models` parts: what was asked, by which avatar
    and licence, with which model files (a file render's report and a stream's answer say the same)."""
    request, avatar = validated.request, validated.avatar
    return {
        "request": RequestPart(
            text=request.text,
            spoken_text=validated.spoken_text,
            language=request.language,
            voice=validated.voice.name,
            channel=request.channel,
            purpose=request.purpose,
        ),
        "avatar": AvatarPart(id=avatar.avatar_id, version=avatar.version, photo_sha256=avatar.photo_sha256()),
        "license": LicensePart.model_validate(validated.license.as_report()),
        "models": model_hashes(settings, voice_models=validated.voice_models),
    }
