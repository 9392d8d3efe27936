"""What every route needs (settings, stores, runner, limits, streams) and the dependencies built on it:
authentication by scope, job ownership, admission limits, and request checks up front.

Why a context object on `app.state` rather than closures in `create_app`: routes live in their own
router modules and get what they need through FastAPI dependencies, testable one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.access_log import KEY_ID_STATE
from api.errors import ApiError
from api.jobs import ActiveLimits, Job, JobLimitError, JobStore
from api.keys import ApiKey, KeyStore
from api.limits import RateLimiter
from api.metrics import Metrics
from api.runner import JobRunner
from api.schemas import GenerateDigitalHuman, VideoCreate
from api.streams import Producer, StreamService
from config import Settings
from config.errors import DhfError
from flows.executors import stream_producer_for
from pipeline.auditing import audit_refusal
from pipeline.request import RenderRequest, validate_request

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer dhf_<id>_<secret>")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key: dhf_<id>_<secret>")


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    keys: KeyStore
    jobs: JobStore
    runner: JobRunner
    limiter: RateLimiter
    metrics: Metrics
    streams: StreamService
    warm: Any = (
        None  # a streaming.warm.WarmPool: analyses, TTS sessions and engines kept ready for streams (this process's)
    )

    @property
    def home(self) -> Path:
        return self.settings.paths.home / "api"

    @classmethod
    def create(cls, settings: Settings, producer: Producer | None = None) -> ApiContext:
        """`producer` renders streams (default: `run_stream` in this process with one warm pool, or its
        flow run on the work pool with `api.executor: pool`)."""
        home = settings.paths.home / "api"
        jobs, metrics = JobStore(home / "jobs.sqlite"), Metrics()
        warm = None
        if producer is None:
            producer, warm = stream_producer_for(settings)
        return cls(
            settings=settings,
            keys=KeyStore(home / "keys.sqlite"),
            jobs=jobs,
            runner=JobRunner(jobs, settings, metrics),
            limiter=RateLimiter(settings.api.rate_per_minute),
            metrics=metrics,
            streams=StreamService(settings, producer),
            warm=warm,
        )


def get_context(request: Request) -> ApiContext:
    return request.app.state.context


Context = Annotated[ApiContext, Depends(get_context)]


def caller(scope: str):
    """A dependency: the authenticated key, which must hold `scope` and be within its rate limit."""

    def dependency(
        request: Request,
        context: Context,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        header_key: Annotated[str | None, Depends(api_key_header)],
    ) -> ApiKey:
        token = credentials.credentials if credentials is not None else header_key
        if not token:
            raise ApiError(401, "missing_key", "send an API key: Authorization: Bearer dhf_… or X-API-Key")
        key = context.keys.authenticate(token)
        if key is None:
            raise ApiError(401, "invalid_key", "the API key is unknown or revoked")
        setattr(request.state, KEY_ID_STATE, key.id)  # for the access log: who asked, never the secret
        if not key.allows(scope):
            raise ApiError(403, "missing_scope", f"this key lacks the '{scope}' scope")
        wait = context.limiter.check(key.id)
        if wait > 0:
            per_minute = context.settings.api.rate_per_minute
            retry = {"Retry-After": str(int(wait) + 1)}
            raise ApiError(429, "rate_limited", f"over {per_minute} requests/minute", retry)
        return key

    return dependency


Reader = Annotated[ApiKey, Depends(caller("read"))]
Renderer = Annotated[ApiKey, Depends(caller("render"))]
Reviewer = Annotated[ApiKey, Depends(caller("review"))]


def own_job(context: ApiContext, job_id: str, key: ApiKey, kind: str) -> Job:
    """The job if this key may see it; 404 otherwise, as if it did not exist (ids cannot be probed)."""
    job = context.jobs.get(job_id)
    if job is None or job.kind != kind or (job.key_id != key.id and not key.allows("admin")):
        raise ApiError(404, "not_found", f"no {kind} job {job_id} for this key")
    return job


def admit(context: ApiContext, key: ApiKey, kind: str, request: dict[str, Any]) -> Job:
    """Queue a new job unless this key or the whole server has too many active ones (429 / 503).

    The count and the insert are one transaction (`JobStore.create`): checked apart, parallel
    requests of one key all passed the check before any of them was stored."""
    limits = context.settings.api
    try:
        return context.jobs.create(
            kind, key.id, request, ActiveLimits(limits.max_active_jobs_per_key, limits.max_active_jobs)
        )
    except JobLimitError as exc:
        if exc.scope == "key":
            message = f"this key has {exc.limit} active jobs (the limit); wait for one to finish"
            raise ApiError(429, "too_many_jobs", message, {"Retry-After": "30"}) from exc
        raise ApiError(503, "busy", "the server has too many active jobs; retry later", {"Retry-After": "60"}) from exc


def checked_video(context: ApiContext, body: VideoCreate | GenerateDigitalHuman, key: ApiKey) -> dict[str, Any]:
    """Refuse up front what the render would refuse (unknown voice or avatar, license scope); audited."""
    probe = RenderRequest(
        text=body.text,
        avatar_id=body.avatar_id,
        language=body.language,
        output=context.home / "validation.mp4",
        voice=body.voice,
        channel=body.channel,
        purpose=body.purpose,
        scene=body.scene,
    )
    try:
        validate_request(probe, context.settings)
    except DhfError as exc:
        audit_refusal(probe, context.settings, f"api-key:{key.id}", exc)
        raise ApiError.from_dhf(exc) from exc
    return body.model_dump()
