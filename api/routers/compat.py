"""`POST /generate_digital_human`: the synchronous route of FaceFusion-style deployments (short texts)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.context import Context, Renderer, admit, checked_video
from api.errors import ERRORS, ApiError, ErrorBody
from api.routers.videos import MP4_RESPONSE
from api.schemas import GenerateDigitalHuman

router = APIRouter(tags=["compatibility"])
TIMEOUT_RESPONSE = {504: {"model": ErrorBody, "description": "not done in time; poll the job"}}


@router.post("/generate_digital_human", response_model=None, responses={**ERRORS, **MP4_RESPONSE, **TIMEOUT_RESPONSE})
def generate_digital_human(body: GenerateDigitalHuman, key: Renderer, context: Context) -> FileResponse:
    """Synchronous render of a short text; returns the MP4 (for clients of that practice)."""
    limit = context.settings.api.sync_max_chars
    if len(body.text) > limit:
        raise ApiError(422, "text_too_long", f"synchronous renders take <= {limit} characters; use /v1/videos")
    job = admit(context, key, "video", checked_video(context, body, key))
    context.runner.submit(job)
    if not context.runner.wait(job.id, context.settings.api.sync_timeout_seconds):
        raise ApiError(504, "timeout", f"still rendering; poll /v1/videos/{job.id}")
    done = context.jobs.get(job.id)
    if done is None or done.status != "succeeded":
        raise ApiError(422, "render_failed", (done.error if done else None) or "the render failed")
    return FileResponse(done.result["paths"]["video"], media_type="video/mp4", filename=f"{job.id}.mp4")
