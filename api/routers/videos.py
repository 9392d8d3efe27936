"""`/v1/videos`: submit a render, follow it, download the video, captions and report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Header
from fastapi.responses import FileResponse, PlainTextResponse

from api.context import Context, Reader, Renderer, admit, checked_video, own_job
from api.errors import ERRORS, ApiError
from api.keys import ApiKey
from api.ranges import video_response
from api.schemas import JobAccepted, JobId, JobStatus, VideoCreate
from pipeline.report import RenderReport
from pipeline.review_store import ReviewError, ReviewStore

router = APIRouter(prefix="/v1/videos", tags=["videos"])
MP4_RESPONSE = {200: {"content": {"video/mp4": {}}, "description": "the MP4 (HTTP range requests supported)"}}
CAPTIONS_RESPONSE = {200: {"content": {"text/plain": {}, "text/vtt": {}}, "description": "SRT (default) or WebVTT"}}


def links(job_id: str) -> dict[str, str]:
    base = f"/v1/videos/{job_id}"
    return {"self": base, "video": f"{base}/video", "captions": f"{base}/captions", "report": f"{base}/report"}


def finished_file(context: Context, job_id: str, key: ApiKey, name: str) -> Path:
    job = own_job(context, job_id, key, "video")
    if job.status != "succeeded":
        raise ApiError(404, "not_ready", f"job {job_id} is {job.status}; the file exists once it succeeded")
    review = live_review(context, job.result)
    if review and review["state"] != "approved":
        raise ApiError(404, "not_published", f"job {job_id}'s video is {review['state']} in review {review['id']}")
    path = Path((job.result or {}).get("paths", {}).get(name) or "")
    if not path.is_file():
        raise ApiError(404, "not_found", f"job {job_id} has no {name} file")
    return path


@router.post("", status_code=202, response_model=JobAccepted, responses=ERRORS)
def create_video(body: VideoCreate, key: Renderer, context: Context) -> JobAccepted:
    """Queue a render; poll GET /v1/videos/{job_id}."""
    job = admit(context, key, "video", checked_video(context, body, key))
    context.runner.submit(job)
    return JobAccepted(job_id=job.id, status=job.status, links=links(job.id))


def live_review(context: Context, result: dict | None) -> dict | None:
    """The job's review as it stands now (a reviewer may have decided since the render finished)."""
    held = (result or {}).get("review")
    if not held:
        return None
    try:
        record = ReviewStore(context.settings).get(held["id"])
    except ReviewError:
        return held
    return {"id": record.id, "state": record.state, "decided_by": record.decided_by, "decided": record.decided}


@router.get("/{job_id}", response_model=JobStatus, responses=ERRORS)
def video_status(job_id: JobId, key: Reader, context: Context) -> dict:
    """Status, progress and quality; `result.review` when the video waits for (or had) a human review."""
    job = own_job(context, job_id, key, "video")
    public = job.public()
    review = live_review(context, job.result)
    if review:
        public["result"] = {**(public["result"] or {}), "review": review}
    return public


@router.get("/{job_id}/video", response_model=None, responses={**ERRORS, **MP4_RESPONSE})
def video_file(
    job_id: JobId, key: Reader, context: Context, range_header: Annotated[str | None, Header(alias="Range")] = None
) -> FileResponse:
    path = finished_file(context, job_id, key, "video")
    return video_response(path, f"{job_id}.mp4", range_header)


@router.get("/{job_id}/captions", response_model=None, responses={**ERRORS, **CAPTIONS_RESPONSE})
def video_captions(
    job_id: JobId, key: Reader, context: Context, format: Literal["srt", "vtt"] = "srt"
) -> PlainTextResponse:
    srt = finished_file(context, job_id, key, "srt")
    path = srt if format == "srt" else srt.with_suffix(".vtt")
    media_type = "text/plain; charset=utf-8" if format == "srt" else "text/vtt; charset=utf-8"
    return PlainTextResponse(path.read_text(encoding="utf-8"), media_type=media_type)


@router.get("/{job_id}/report", response_model=RenderReport, responses=ERRORS)
def video_report(job_id: JobId, key: Reader, context: Context) -> RenderReport:
    """The render's report (quality scores, marks, hashes, timings), without server paths."""
    return RenderReport.load(finished_file(context, job_id, key, "report")).without_paths()
