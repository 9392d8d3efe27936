"""The HTTP API (FastAPI): generation jobs for other systems (a CMS, a chatbot back office).

Every route but /healthz and /metrics needs an API key (`Authorization: Bearer dhf_…` or
`X-API-Key: dhf_…`): 401 when it is missing, unknown or revoked, 403 when it lacks the route's
scope. A job is visible only to the key that created it (or an `admin` key); others get 404, as if
it did not exist. Every error is JSON `{"error": {"code", "message"}}`. Requests are checked up
front (text length, language, voice, avatar, license scope) so refusals are immediate, and audited
under `api-key:<id>` like every render.
"""

import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from config import Settings
from flows.api.jobs import Job, JobStore
from flows.api.keys import ApiKey, KeyStore
from flows.api.limits import BodySizeLimit, RateLimiter
from flows.api.runner import JobRunner, Metrics, job_folder

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
JobId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{32}$", description="job id returned by POST")]
bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer dhf_<id>_<secret>")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key: dhf_<id>_<secret>")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "missing, unknown or revoked API key",
        403: "the key lacks the scope, or the license does not allow this use",
        404: "no such job or avatar for this key",
        413: "request body too large",
        422: "invalid request",
        429: "rate limit or too many active jobs for this key (see Retry-After)",
        503: "the server has too many active jobs",
    }.items()
}


class VideoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quality_fallback: Literal["none", "reduced_motion", "still"] | None = Field(
        default=None, description="what to publish when the quality gate fails (default: server setting)"
    )


class VideoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000, description="what the avatar says")
    language: str = Field(pattern=r"^[a-z]{2,3}$", description="e.g. en, zh, es")
    avatar_id: str = Field(pattern=ID_PATTERN)
    voice: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="config/voices.yaml")
    channel: str = Field(default="web", pattern=ID_PATTERN, description="must be in the avatar's license")
    purpose: str = Field(default="customer-service", pattern=ID_PATTERN, description="must be in the license")
    options: VideoOptions | None = None


class GenerateDigitalHuman(BaseModel):
    """The synchronous request of the established FaceFusion-style deployments (short texts)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)
    avatar_id: str = Field(pattern=ID_PATTERN)
    language: str = Field(default="zh", pattern=r"^[a-z]{2,3}$")
    voice: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    channel: str = Field(default="web", pattern=ID_PATTERN)
    purpose: str = Field(default="customer-service", pattern=ID_PATTERN)


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


def create_app(settings: Settings) -> FastAPI:
    home = settings.paths.home / "api"
    keys = KeyStore(home / "keys.sqlite")
    jobs = JobStore(home / "jobs.sqlite")
    metrics = Metrics()
    runner = JobRunner(jobs, settings, metrics)
    limiter = RateLimiter(settings.api.rate_per_minute)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.resume()
        yield
        runner.shutdown()

    app = FastAPI(
        title="Digital Human Factory API",
        version="1.0",
        description="Licensed, labeled talking-head videos from text. Keys: `dhf api-key create`.",
        lifespan=lifespan,
    )
    app.state.runner = runner

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}"[:300])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        metrics.count_response(response.status_code)
        return response

    def caller(scope: str):
        def dependency(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
            header_key: Annotated[str | None, Depends(api_key_header)],
        ) -> ApiKey:
            token = credentials.credentials if credentials is not None else header_key
            if not token:
                raise ApiError(401, "missing_key", "send an API key: Authorization: Bearer dhf_… or X-API-Key")
            key = keys.authenticate(token)
            if key is None:
                raise ApiError(401, "invalid_key", "the API key is unknown or revoked")
            if not key.allows(scope):
                raise ApiError(403, "missing_scope", f"this key lacks the '{scope}' scope")
            wait = limiter.check(key.id)
            if wait > 0:
                headers = {"Retry-After": str(int(wait) + 1)}
                raise ApiError(429, "rate_limited", f"over {settings.api.rate_per_minute} requests/minute", headers)
            return key

        return dependency

    reader = Annotated[ApiKey, Depends(caller("read"))]
    renderer = Annotated[ApiKey, Depends(caller("render"))]

    def own_job(job_id: str, key: ApiKey, kind: str) -> Job:
        job = jobs.get(job_id)
        if job is None or job.kind != kind or (job.key_id != key.id and not key.allows("admin")):
            raise ApiError(404, "not_found", f"no {kind} job {job_id} for this key")
        return job

    def admit(key: ApiKey) -> None:
        if jobs.active_count(key.id) >= settings.api.max_active_jobs_per_key:
            limit = settings.api.max_active_jobs_per_key
            raise ApiError(429, "too_many_jobs", f"this key has {limit} active jobs", {"Retry-After": "30"})
        if jobs.active_count() >= settings.api.max_active_jobs:
            raise ApiError(503, "busy", "the server has too many active jobs; retry later", {"Retry-After": "60"})

    def checked_video(body: VideoCreate | GenerateDigitalHuman, key: ApiKey) -> dict[str, Any]:
        """Refuse up front what the render would refuse (unknown voice or avatar, license scope)."""
        from flows.auditing import audit_refusal
        from flows.cli import USER_ERRORS
        from flows.stages import RenderRequest, validate_request

        request = body.model_dump()
        probe = RenderRequest(
            text=body.text,
            avatar_id=body.avatar_id,
            language=body.language,
            output=home / "validation.mp4",
            voice=body.voice,
            channel=body.channel,
            purpose=body.purpose,
        )
        try:
            validate_request(probe, settings)
        except USER_ERRORS as exc:
            audit_refusal(probe, settings, f"api-key:{key.id}", exc)
            license_problem = type(exc).__name__ == "LicenseError"
            status, code = (403, "license_refused") if license_problem else (422, "refused")
            raise ApiError(status, code, str(exc).splitlines()[0][:400]) from exc
        return request

    @app.post("/v1/videos", status_code=202, response_model=JobAccepted, responses=ERRORS, tags=["videos"])
    def create_video(body: VideoCreate, key: renderer) -> JobAccepted:
        """Queue a render; poll GET /v1/videos/{job_id}."""
        admit(key)
        job = jobs.create("video", key.id, checked_video(body, key))
        runner.submit(job)
        return JobAccepted(job_id=job.id, status=job.status, links=_links(job.id))

    @app.get("/v1/videos/{job_id}", response_model=JobStatus, responses=ERRORS, tags=["videos"])
    def video_status(job_id: JobId, key: reader) -> dict:
        return own_job(job_id, key, "video").public()

    def finished_file(job_id: str, key: ApiKey, name: str) -> Path:
        job = own_job(job_id, key, "video")
        if job.status != "succeeded":
            raise ApiError(404, "not_ready", f"job {job_id} is {job.status}; the file exists once it succeeded")
        path = Path((job.result or {}).get("paths", {}).get(name) or "")
        if not path.is_file():
            raise ApiError(404, "not_found", f"job {job_id} has no {name} file")
        return path

    media = {200: {"content": {"video/mp4": {}}, "description": "the MP4 (HTTP range requests supported)"}}

    @app.get("/v1/videos/{job_id}/video", response_model=None, responses={**ERRORS, **media}, tags=["videos"])
    def video_file(job_id: JobId, key: reader):
        return FileResponse(finished_file(job_id, key, "video"), media_type="video/mp4", filename=f"{job_id}.mp4")

    captions = {200: {"content": {"text/plain": {}, "text/vtt": {}}, "description": "SRT (default) or WebVTT"}}

    @app.get(
        "/v1/videos/{job_id}/captions",
        response_model=None,
        responses={**ERRORS, **captions},
        tags=["videos"],
    )
    def video_captions(job_id: JobId, key: reader, format: Literal["srt", "vtt"] = "srt"):
        srt = finished_file(job_id, key, "srt")
        path = srt if format == "srt" else srt.with_suffix(".vtt")
        media_type = "text/plain; charset=utf-8" if format == "srt" else "text/vtt; charset=utf-8"
        return PlainTextResponse(path.read_text(encoding="utf-8"), media_type=media_type)

    @app.get("/v1/videos/{job_id}/report", response_model=dict[str, Any], responses=ERRORS, tags=["videos"])
    def video_report(job_id: JobId, key: reader) -> dict:
        report = json.loads(finished_file(job_id, key, "report").read_text(encoding="utf-8"))
        return _without_paths(report)

    @app.post("/v1/batches", status_code=202, response_model=JobAccepted, responses=ERRORS, tags=["batches"])
    def create_batch(body: BatchCreate, key: renderer) -> JobAccepted:
        """Queue a batch script (every item in every language); checked before it is queued."""
        from flows.batch_script import BatchScriptError, validate_script

        admit(key)
        job = jobs.create("batch", key.id, {"script_sha256": _sha256(body.script)})
        folder = job_folder(settings, job.id)
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / "script.yaml"
        script.write_text(body.script, encoding="utf-8")
        try:
            validate_script(script, settings)
        except BatchScriptError as exc:
            message = str(exc).replace(str(script), "script")
            jobs.fail(job.id, message)
            raise ApiError(422, "invalid_script", message[:400]) from exc
        runner.submit(job)
        return JobAccepted(job_id=job.id, status="queued", links={"self": f"/v1/batches/{job.id}"})

    @app.get("/v1/batches/{job_id}", response_model=JobStatus, responses=ERRORS, tags=["batches"])
    def batch_status(job_id: JobId, key: reader) -> dict:
        return own_job(job_id, key, "batch").public()

    @app.get("/v1/avatars", response_model=list[AvatarInfo], responses=ERRORS, tags=["avatars"])
    def avatars(key: reader) -> list[AvatarInfo]:
        """Licensed avatars with their scope and validity (never the consent document)."""
        return _avatars(settings)

    @app.post(
        "/generate_digital_human",
        response_model=None,
        responses={**ERRORS, **media, 504: {"model": ErrorBody, "description": "not done in time; poll the job"}},
        tags=["compatibility"],
    )
    def generate_digital_human(body: GenerateDigitalHuman, key: renderer):
        """Synchronous render of a short text; returns the MP4 (for clients of that practice)."""
        if len(body.text) > settings.api.sync_max_chars:
            limit = settings.api.sync_max_chars
            raise ApiError(422, "text_too_long", f"synchronous renders take <= {limit} characters; use /v1/videos")
        admit(key)
        job = jobs.create("video", key.id, checked_video(body, key))
        runner.submit(job)
        if not runner.wait(job.id, settings.api.sync_timeout_seconds):
            raise ApiError(504, "timeout", f"still rendering; poll /v1/videos/{job.id}")
        done = jobs.get(job.id)
        if done.status != "succeeded":
            raise ApiError(422, "render_failed", done.error or "the render failed")
        return FileResponse(done.result["paths"]["video"], media_type="video/mp4", filename=f"{job.id}.mp4")

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz() -> Health:
        return Health(status="ok", active_jobs=jobs.active_count())

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    def prometheus() -> PlainTextResponse:
        """Prometheus text format: jobs by kind and status, job durations, HTTP responses."""
        return PlainTextResponse(_metrics_text(jobs, metrics), media_type="text/plain; version=0.0.4")

    app.add_middleware(BodySizeLimit, limit=settings.api.max_body_bytes)
    return app


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _links(job_id: str) -> dict[str, str]:
    base = f"/v1/videos/{job_id}"
    return {"self": base, "video": f"{base}/video", "captions": f"{base}/captions", "report": f"{base}/report"}


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _without_paths(report: dict) -> dict:
    """The report without server paths (they say nothing to a client and reveal the layout)."""
    hidden = {"output", "report", "wav", "track", "video", "clip", "rejected", "srt", "vtt"}

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not (k in hidden and isinstance(v, str))}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(report)


def _avatars(settings: Settings) -> list[AvatarInfo]:
    import datetime as dt

    from avatars.library import AvatarLibrary

    library = AvatarLibrary.from_settings(settings.paths)
    found = []
    for avatar_id in library.ids():
        try:
            avatar = library.get(avatar_id)
            versions = [v.version for v in library.versions(avatar_id)]
        except Exception:  # a broken entry is left out, not a 500
            continue
        try:
            lic = avatar.license()
            today = dt.date.today()
            info = LicenseInfo(
                license_id=lic.license_id,
                valid_from=lic.valid_from.isoformat(),
                valid_until=lic.valid_until.isoformat(),
                valid_now=lic.valid_from <= today <= lic.valid_until and not lic.revoked and not avatar.revoked,
                languages=list(lic.languages),
                channels=list(lic.channels),
                purposes=list(lic.purposes),
            )
        except Exception:
            info = None
        found.append(AvatarInfo(avatar_id=avatar_id, name=avatar.name, version=avatar.version, versions=versions,
                                revoked=avatar.revoked, license=info))  # fmt: skip
    return found


def _metrics_text(jobs: JobStore, metrics: Metrics) -> str:
    lines = ["# HELP dhf_jobs Jobs by kind and status.", "# TYPE dhf_jobs gauge"]
    for (kind, status), count in sorted(jobs.counts().items()):
        lines.append(f'dhf_jobs{{kind="{kind}",status="{status}"}} {count}')
    lines += [
        "# HELP dhf_job_duration_seconds Time jobs took in this process.",
        "# TYPE dhf_job_duration_seconds summary",
    ]
    with metrics.lock:
        for kind, values in sorted(metrics.durations.items()):
            lines.append(f'dhf_job_duration_seconds_sum{{kind="{kind}"}} {sum(values):.3f}')
            lines.append(f'dhf_job_duration_seconds_count{{kind="{kind}"}} {len(values)}')
        lines += [
            "# HELP dhf_http_responses_total HTTP responses by status code.",
            "# TYPE dhf_http_responses_total counter",
        ]
        for status, count in sorted(metrics.requests.items()):
            lines.append(f'dhf_http_responses_total{{code="{status}"}} {count}')
    return "\n".join(lines) + "\n"
