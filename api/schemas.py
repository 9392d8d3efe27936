"""Request and response bodies of the REST API (they make its OpenAPI schema).

Why the channel and purpose defaults are read from `RenderRequest`: the API and `dhf render` must
agree, so that the minimal call that works on the command line (text, language, avatar) also works
over HTTP; with defaults of its own, the API refused the sample avatar that the CLI renders.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import Path as PathParameter
from pydantic import BaseModel, ConfigDict, Field

from pipeline.request import RenderRequest

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_RENDER_DEFAULTS = {field.name: field.default for field in dataclasses.fields(RenderRequest)}
DEFAULT_CHANNEL: str = _RENDER_DEFAULTS["channel"]
DEFAULT_PURPOSE: str = _RENDER_DEFAULTS["purpose"]
JobId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{32}$", description="job id returned by POST")]


class VideoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quality_fallback: Literal["none", "reduced_motion", "still"] | None = Field(
        default=None, description="what to publish when the quality gate fails (default: server setting)"
    )


class VideoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10_000, description="what the avatar says")
    language: str = Field(pattern=r"^[a-z]{2,3}$", description="e.g. en, zh, es")
    avatar_id: str = Field(pattern=ID_PATTERN)
    voice: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="config/voices.yaml")
    channel: str = Field(
        default=DEFAULT_CHANNEL, pattern=ID_PATTERN, description="must be in the avatar's license (as `dhf render`)"
    )
    purpose: str = Field(default=DEFAULT_PURPOSE, pattern=ID_PATTERN, description="must be in the license")
    scene: str | None = Field(
        default=None, pattern=ID_PATTERN, description="scene template (README: Scenes); 'none': classic layout"
    )
    options: VideoOptions | None = None


class GenerateDigitalHuman(BaseModel):
    """The synchronous request of the established FaceFusion-style deployments (short texts)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10_000)
    avatar_id: str = Field(pattern=ID_PATTERN)
    language: str = Field(default="zh", pattern=r"^[a-z]{2,3}$")
    voice: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    channel: str = Field(default=DEFAULT_CHANNEL, pattern=ID_PATTERN)
    purpose: str = Field(default=DEFAULT_PURPOSE, pattern=ID_PATTERN)
    scene: str | None = Field(default=None, pattern=ID_PATTERN)


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    script: str = Field(min_length=1, max_length=60000, description="the batch script, YAML (README: Batches)")


class JobAccepted(BaseModel):
    job_id: str
    status: str
    links: dict[str, str]


class JobStatus(BaseModel):
    job_id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    result: dict[str, Any] | None
    error: str | None
    note: str | None
    created: str
    updated: str


class LicenseInfo(BaseModel):
    license_id: str
    valid_from: str
    valid_until: str
    valid_now: bool
    languages: list[str]
    channels: list[str]
    purposes: list[str]


class AvatarInfo(BaseModel):
    avatar_id: str
    name: str
    version: int
    versions: list[int]
    revoked: bool
    license: LicenseInfo | None


class Health(BaseModel):
    status: str
    active_jobs: int


class StreamPlayback(BaseModel):
    master: str = Field(description="the HLS playlist: signed path, no API key needed (a <video> or hls.js fetches it)")
    player: str = Field(description="a page that plays the stream (hls.js or native HLS), same signed path")


class StreamAccepted(BaseModel):
    stream_id: str
    status: str
    playback: StreamPlayback
    links: dict[str, str]


class StreamStatus(BaseModel):
    stream_id: str
    status: Literal["starting", "streaming", "finished", "fallback", "failed"]
    message: str = Field(description="one line whenever the status is fallback or failed")
    created: float = Field(description="unix time the request arrived")
    first_release_s: float | None = Field(description="seconds from the request to the first released segment")
    released_segments: int
    released_seconds: float
    rendered_frames: int
    total_frames: int | None
    mode: str = Field(description="normal | reduced_motion | still: the mode of the segments released now")
    content_id: str
    failure: dict[str, Any] | None = Field(description="the quality gate's finding when a segment failed")
    outputs: list[str] = Field(description="the published files once ended: mp4, srt, vtt, report")
    ended: bool
    ended_at: float | None
    playback: StreamPlayback
    links: dict[str, str]


StreamId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{32}$", description="stream id returned by POST")]
