"""New video, jobs (live progress by Server-Sent Events, cancel) and the video page.

Why every gate is the API's own: a submit is `api.context.checked_video` (the render's checks,
audited when refused) then `admit` and `runner.submit`, exactly as POST /v1/videos, so the AI label,
watermark, C2PA, audit and review cannot be skipped from here; downloads go through
`api.routers.videos.finished_file`, which refuses a video still held for (or rejected in) review.
The inline check is `validate_request`, what `dhf render --dry-run` runs (api.studio.checks).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.context import ApiContext, admit, checked_video, get_context, own_job
from api.errors import ApiError
from api.jobs import Job
from api.ranges import video_response
from api.routers.videos import finished_file, live_review
from api.schemas import ID_PATTERN, VideoCreate
from api.studio import previews
from api.studio.checks import MAX_LANGUAGES, Draft, check_draft, draft_problems
from api.studio.pages import PREFIX, page
from api.studio.scores import score_rows
from api.studio.session import StudioForbidden, StudioUser, check_csrf, require
from avatars.library import Avatar, AvatarLibrary
from config import Settings, load_voices
from config.errors import DhfError
from config.files import atomic_path
from pipeline.report import RenderReport
from pipeline.run import quality_scores

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Reader = Annotated[StudioUser, Depends(require("read"))]
Renderer = Annotated[StudioUser, Depends(require("render"))]
EVENT_POLL_S = 0.5  # the job store is re-read this often while a job is active
EVENT_MAX_S = 30.0  # a stream's longest life (EventSource reconnects): a stopping server waits at most this
MAX_SCRIPT_BYTES = 40_000  # a script file: 10 000 characters (the API's limit), UTF-8 at most 4 bytes each
ACTIVE = ("queued", "running")


def _context(request: Request) -> ApiContext:
    return get_context(request)


def _actor(user: StudioUser) -> str:
    return f"api-key:{user.key.id}"


# --- the New video page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AvatarChoice:
    """An avatar as the picker shows it: licence scope, validity and whether review is required."""

    avatar_id: str
    name: str
    version: int
    license_id: str | None
    valid_from: str
    valid_until: str
    state: str  # valid | expired | not yet valid | revoked | no licence
    review_required: bool
    languages: tuple[str, ...]
    channels: tuple[str, ...]
    purposes: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return self.state == "valid"


def avatar_choices(settings: Settings) -> list[AvatarChoice]:
    import datetime as dt

    library = AvatarLibrary.from_settings(settings.paths)
    today = dt.date.today()
    found = []
    for avatar_id in library.ids():
        try:
            avatar = library.get(avatar_id)
        except DhfError:  # a broken library entry is left out, as GET /v1/avatars leaves it out
            continue
        try:
            lic = avatar.license()
        except DhfError:
            found.append(AvatarChoice(avatar_id, avatar.name, avatar.version, None, "", "", "no licence", False,
                                      (), (), ()))  # fmt: skip
            continue
        if avatar.revoked or lic.revoked:
            state = "revoked"
        elif today > lic.valid_until:
            state = "expired"
        elif today < lic.valid_from:
            state = "not yet valid"
        else:
            state = "valid"
        found.append(
            AvatarChoice(avatar_id, avatar.name, avatar.version, lic.license_id, lic.valid_from.isoformat(),
                         lic.valid_until.isoformat(), state, lic.review_required, tuple(lic.languages),
                         tuple(lic.channels), tuple(lic.purposes))
        )  # fmt: skip
    return found


@dataclass(frozen=True)
class VoiceChoice:
    name: str
    language: str
    engine: str
    default: bool


def voice_choices(settings: Settings) -> list[VoiceChoice]:
    voices, defaults = load_voices(settings)
    chosen = set(defaults.values())
    return sorted(
        (VoiceChoice(name, voice.language, voice.engine, name in chosen) for name, voice in voices.items()),
        key=lambda voice: (voice.language, not voice.default, voice.name),
    )


@router.get("/videos/new", response_class=HTMLResponse)
def new_video_page(request: Request, user: Renderer) -> Response:
    settings = _context(request).settings
    avatars = avatar_choices(settings)
    voices = voice_choices(settings)
    languages = sorted({voice.language for voice in voices})
    first = next((avatar for avatar in avatars if avatar.usable), avatars[0] if avatars else None)
    return page(
        request,
        "new_video.html",
        "New video",
        user,
        active="new",
        avatars=avatars,
        chosen=first,
        voices=voices,
        languages=languages,
        scenes=sorted(settings.scenes),
        default_scene=settings.scene.name,
        max_characters=settings.text.max_chars,
        max_languages=MAX_LANGUAGES,
    )


class DraftBody(BaseModel):
    """What studio.js sends to the check endpoint (and what the form submits)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(default="", max_length=20_000)
    avatar_id: str = Field(pattern=ID_PATTERN)
    languages: list[str] = Field(default_factory=list, max_length=MAX_LANGUAGES + 1)
    voice: str = Field(default="", max_length=64)
    scene: str = Field(default="", max_length=64)
    channel: str = Field(default="demo", max_length=64)
    purpose: str = Field(default="demo", max_length=64)


def draft_of(body: DraftBody, settings: Settings) -> Draft:
    voices, _ = load_voices(settings)
    voice = voices.get(body.voice) if body.voice else None
    return Draft(
        text=body.text,
        avatar_id=body.avatar_id,
        languages=tuple(dict.fromkeys(body.languages)),  # each language once, in the order given
        voice=voice.name if voice else (body.voice or None),
        voice_language=voice.language if voice else (body.languages[0] if body.voice and body.languages else None),
        scene=body.scene or None,
        channel=body.channel,
        purpose=body.purpose,
    )


@router.post("/videos/check")
async def check(request: Request, user: Renderer) -> JSONResponse:
    """The inline checks as JSON (studio.js calls it debounced, with the X-CSRF-Token header)."""
    await check_csrf(request, user)
    try:
        body = DraftBody.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        return JSONResponse({"valid": False, "problems": [f"the check request is malformed: {exc}"[:300]],
                             "languages": []}, status_code=422)  # fmt: skip
    context = _context(request)
    draft = draft_of(body, context.settings)
    result = await asyncio.to_thread(
        check_draft, draft, context.settings, context.home / "validation.mp4", _actor(user)
    )
    return JSONResponse(result)


async def _script_text(text: str, script: UploadFile | None) -> str:
    """The textarea's text, or the uploaded script file's (UTF-8, BOM dropped) when one was chosen."""
    if script is None or not script.filename:
        return text
    data = await script.read(MAX_SCRIPT_BYTES + 1)
    if len(data) > MAX_SCRIPT_BYTES:
        raise StudioForbidden(f"the script file is over {MAX_SCRIPT_BYTES // 1000} kB; shorten it", 413)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StudioForbidden(
            f"the script file {script.filename} is not UTF-8 (byte {exc.start}); save it as UTF-8 and upload it again",
            422,
        ) from exc


@router.post("/videos")
async def submit(
    request: Request,
    user: Renderer,
    avatar_id: Annotated[str, Form()],
    languages: Annotated[list[str], Form(alias="language")] = [],  # noqa: B006 (FastAPI copies defaults)
    text: Annotated[str, Form()] = "",
    script: Annotated[UploadFile | None, File()] = None,
    voice: Annotated[str, Form()] = "",
    scene: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "demo",
    purpose: Annotated[str, Form()] = "demo",
) -> Response:
    """One API job per chosen language, each through the path of POST /v1/videos; then the jobs page."""
    await check_csrf(request, user)
    context = _context(request)
    body = DraftBody(text=await _script_text(text, script), avatar_id=avatar_id, languages=languages, voice=voice,
                     scene=scene, channel=channel, purpose=purpose)  # fmt: skip
    draft = draft_of(body, context.settings)
    problems = draft_problems(draft)
    if problems:
        raise StudioForbidden(f"{problems[0]}; correct the form and send it again", 422)
    jobs = await asyncio.to_thread(_create_jobs, context, user, draft)
    return RedirectResponse(f"{PREFIX}/jobs?new={','.join(job.id for job in jobs)}", status_code=303)


def _create_jobs(context: ApiContext, user: StudioUser, draft: Draft) -> list[Job]:
    """Check every language first (a refusal queues nothing), then admit and submit each."""
    bodies = []
    for language in draft.languages:
        try:
            body = VideoCreate(text=draft.text, language=language, avatar_id=draft.avatar_id,
                               voice=draft.voice_for(language), channel=draft.channel, purpose=draft.purpose,
                               scene=draft.scene)  # fmt: skip
        except ValidationError as exc:
            fields = ", ".join(sorted({str(error["loc"][-1]) for error in exc.errors()}))
            raise StudioForbidden(f"{language}: invalid {fields}; correct the form and send it again", 422) from exc
        bodies.append(checked_video(context, body, user.key))
    jobs: list[Job] = []
    for checked in bodies:
        try:
            job = admit(context, user.key, "video", checked)
        except ApiError as exc:  # an active-job limit reached part-way: say what was queued
            queued = ", ".join(f"{job.request['language']} (job {job.id[:8]})" for job in jobs)
            done = f"queued {queued}; " if jobs else ""
            raise StudioForbidden(f"{done}{checked['language']} refused: {exc.message}", exc.status) from exc
        context.runner.submit(job)
        jobs.append(job)
    return jobs


@router.get("/voices/{name}/sample.wav")
async def voice_sample(request: Request, name: str, user: Renderer) -> FileResponse:
    """The voice saying a short sentence in its language (cached: the speech stage's own cache)."""
    path = await asyncio.to_thread(previews.voice_sample, _context(request).settings, name)
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "private, max-age=3600"})


def _avatar(settings: Settings, avatar_id: str) -> Avatar:
    return AvatarLibrary.from_settings(settings.paths).get(avatar_id)  # AvatarError (404-ish) when unknown


def reader_or_renderer(request: Request) -> StudioUser:
    """Thumbnails are shown on the New video page (render) and in the library (read)."""
    user = require()(request)
    if not (user.can("read") or user.can("render")):
        raise StudioForbidden(f"your key '{user.key.name}' lacks the 'read' or 'render' scope")
    return user


@router.get("/avatars/{avatar_id}/thumbnail.png")
async def avatar_thumbnail(
    request: Request, avatar_id: str, user: Annotated[StudioUser, Depends(reader_or_renderer)]
) -> FileResponse:
    settings = _context(request).settings
    path = await asyncio.to_thread(lambda: previews.thumbnail(settings, _avatar(settings, avatar_id)))
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/scene-preview.png")
async def scene_preview(
    request: Request,
    user: Renderer,
    avatar: Annotated[str, Query(pattern=ID_PATTERN)],
    scene: Annotated[str, Query(max_length=64)] = "",
    channel: Annotated[str, Query(max_length=64)] = "",
) -> FileResponse:
    """The engine's still frame of the avatar in the scene (label, logo, name tag; caption box outlined);
    no scene chosen: the channel's, as `pipeline.request.resolve_scene` picks it."""
    settings = _context(request).settings
    chosen = scene or settings.scene.channels.get(channel, settings.scene.name) or None
    path = await asyncio.to_thread(lambda: previews.scene_preview(settings, _avatar(settings, avatar), chosen))
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


# --- jobs: list, live progress, cancel --------------------------------------------------------------


def cli_words(error: str | None) -> str | None:
    """The runner stores `<ErrorType>: <message>`; `dhf render` prints the message alone."""
    if not error:
        return None
    kind, sep, message = error.partition(": ")
    return message if sep and kind.isidentifier() else error


def job_state(context: ApiContext, job: Job) -> dict[str, Any]:
    """What the jobs pages show of a job, and what each Server-Sent Event carries."""
    done, total = context.runner.frames.get(job.id, (0, 0))
    review = live_review(context, job.result) if job.status == "succeeded" else None
    if job.status == "queued":
        stage = "waiting in the queue"
    elif job.status == "running" and total == 0:
        stage = "preparing: speech, avatar and motion"
    elif job.status == "running" and done < total:
        stage = "rendering frames"
    elif job.status == "running":
        stage = "quality gate, AI marks and packaging"
    elif job.status == "succeeded" and review and review["state"] == "pending":
        stage = f"held for review {review['id']}"
    elif job.status == "succeeded" and review and review["state"] == "rejected":
        stage = f"rejected in review {review['id']}"
    elif job.status == "succeeded":
        stage = "published"
    else:
        stage = "failed"
    return {
        "id": job.id,
        "status": job.status,
        "stage": stage,
        "progress": round(job.progress, 3),
        "frames_done": done,
        "frames_total": total,
        "error": cli_words(job.error),
        "language": job.request.get("language"),
        "video": f"{PREFIX}/videos/{job.id}" if stage == "published" else None,  # held or rejected: nothing to play
    }


def visible_jobs(context: ApiContext, user: StudioUser, limit: int = 50) -> list[Job]:
    """The key's video jobs, newest first (an admin key sees every key's, as own_job lets it)."""
    return context.jobs.recent(None if user.can("admin") else user.key.id, ("video",), limit)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, user: Reader, new: str = "") -> Response:
    context = _context(request)
    jobs = visible_jobs(context, user)
    fresh = set(new.split(",")) if new else set()
    rows = [{**job_state(context, job), "text": job.request.get("text", ""), "created": job.created} for job in jobs]
    return page(request, "jobs.html", "Jobs", user, active="jobs", jobs=rows, fresh=fresh)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, user: Reader) -> Response:
    context = _context(request)
    job = own_job(context, job_id, user.key, "video")
    state = job_state(context, job)
    title = f"Job {job.id[:8]}"
    return page(request, "job.html", title, user, active="jobs", job=job, state=state)


async def job_events(request: Request, context: ApiContext, ids: list[str]) -> AsyncIterator[str]:
    """`event: job` with the job's state whenever it changes; `event: end` once none is active."""
    sent: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    started = loop.time()
    yield "retry: 2000\n\n"
    while loop.time() - started < EVENT_MAX_S:
        if await request.is_disconnected():
            return
        jobs = await asyncio.to_thread(lambda: [context.jobs.get(job_id) for job_id in ids])
        active = False
        for job in jobs:
            if job is None:
                continue
            state = json.dumps(job_state(context, job), ensure_ascii=False)
            if sent.get(job.id) != state:
                sent[job.id] = state
                yield f"event: job\ndata: {state}\n\n"
            active = active or job.status in ACTIVE
        if not active:
            yield "event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(EVENT_POLL_S)


@router.get("/jobs-events")
def events(request: Request, user: Reader, ids: Annotated[str, Query(max_length=33 * 50)] = "") -> StreamingResponse:
    """Server-Sent Events for the listed jobs (default: the key's active ones); unknown ids are ignored."""
    context = _context(request)
    if ids:
        wanted = [job_id for job_id in ids.split(",") if job_id]
        mine = []
        for job_id in wanted:
            try:
                mine.append(own_job(context, job_id, user.key, "video").id)
            except ApiError:
                continue
    else:
        mine = [job.id for job in visible_jobs(context, user) if job.status in ACTIVE]
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(job_events(request, context, mine), media_type="text/event-stream", headers=headers)


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: str, user: Renderer) -> Response:
    """Cancel a queued job (it never starts) or a running one (it stops at its next frame)."""
    await check_csrf(request, user)
    context = _context(request)
    job = own_job(context, job_id, user.key, "video")
    if job.status not in ACTIVE:
        raise StudioForbidden(f"job {job_id[:8]} is {job.status}; only queued or running jobs can be cancelled", 409)
    context.runner.cancel(job.id, f"{user.key.name} (studio)")
    return RedirectResponse(f"{PREFIX}/jobs/{job.id}", status_code=303)


# --- the video page and its downloads ----------------------------------------------------------------


def provenance_facts(context: ApiContext, video: Path, report: RenderReport) -> dict[str, Any]:
    """Content id, C2PA, watermark and audit entry as `dhf verify` reads them from the file (cached per
    file hash: reading the watermark decodes frames)."""
    from governance.verify import verify_video

    cache = previews.cache_folder(context.settings) / f"verify-{report.sha256[:32]}.json"
    if cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8"))
    verified = verify_video(video, context.settings)
    checks = {check.mark: {"status": check.status, "detail": check.detail} for check in verified.checks}
    facts = {
        "content_id": verified.content_id or report.provenance.content_id,
        "checks": checks,
        "audit": {"status": verified.audit.status, "detail": verified.audit.detail},
        "audit_entry": verified.audit_entry,
        "review": verified.review,
        "verdict": verified.verdict,
    }
    with atomic_path(cache) as temporary:  # two first views at once: each writes whole, one wins
        temporary.write_text(json.dumps(facts, ensure_ascii=False), encoding="utf-8")
    return facts


@router.get("/videos/{job_id}", response_class=HTMLResponse)
async def video_page(request: Request, job_id: str, user: Reader) -> Response:
    context = _context(request)
    job = own_job(context, job_id, user.key, "video")
    state = job_state(context, job)
    if job.status != "succeeded":
        raise StudioForbidden(f"job {job_id[:8]} is {job.status}: {state['stage']}; its video exists once it succeeded",
                              404)  # fmt: skip
    try:
        report_path = finished_file(context, job_id, user.key, "report")
        video = finished_file(context, job_id, user.key, "video")
    except ApiError as exc:  # held for or rejected in review: nothing published to play
        raise StudioForbidden(exc.message, exc.status) from exc
    report = RenderReport.load(report_path)
    facts = await asyncio.to_thread(provenance_facts, context, video, report)
    base = f"{PREFIX}/videos/{job_id}"
    downloads = {
        "MP4 video": f"{base}/video.mp4",
        "SRT captions": f"{base}/captions.srt",
        "WebVTT captions": f"{base}/captions.vtt",
        "Render report (JSON)": f"{base}/report.json",
    }
    scores = score_rows(quality_scores(report.quality), context.settings, report.quality.frames)
    return page(request, "video.html", f"Video {job_id[:8]}", user, active="jobs", job=job, report=report,
                scores=scores, facts=facts, downloads=downloads, base=base,
                language=report.request.language)  # fmt: skip


@router.get("/videos/{job_id}/video.mp4")
def video_file(request: Request, job_id: str, user: Reader) -> Response:
    path = finished_file(_context(request), job_id, user.key, "video")
    return video_response(path, f"{job_id}.mp4", request.headers.get("range"))


@router.get("/videos/{job_id}/captions.{kind}")
def captions_file(request: Request, job_id: str, kind: str, user: Reader) -> Response:
    if kind not in ("srt", "vtt"):
        raise StudioForbidden("captions are .srt or .vtt", 404)
    srt = finished_file(_context(request), job_id, user.key, "srt")
    path = srt if kind == "srt" else srt.with_suffix(".vtt")
    media = "text/plain; charset=utf-8" if kind == "srt" else "text/vtt; charset=utf-8"
    disposition = {"Content-Disposition": f'inline; filename="{job_id}.{kind}"'}
    return Response(path.read_text(encoding="utf-8"), media_type=media, headers=disposition)


@router.get("/videos/{job_id}/report.json")
def report_file(request: Request, job_id: str, user: Reader) -> Response:
    report = RenderReport.load(finished_file(_context(request), job_id, user.key, "report")).without_paths()
    return Response(report.model_dump_json(indent=2), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.report.json"'})  # fmt: skip
