"""`/v1/reviews`: videos held for human review (README: Review before publishing).

Only keys with the `review` scope may list or decide them; `render` does not imply it and neither
does `admin` (whoever orders videos does not also approve them). A reviewer sees every pending
review, whichever key requested the video, but cannot approve a video its own key requested
(separation of duties). The decision is audited under `api-key:<id>` with the reviewer's name
beside it, exactly as `dhf review approve|reject` records the OS user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.context import Context, Reviewer
from api.errors import ERRORS, ApiError
from api.ranges import video_response
from pipeline.review import Decider, decide, get_review, list_reviews

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])
ReviewId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{12}$", description="id from GET /v1/reviews")]
DECISION_ERRORS = {**ERRORS, 409: {"model": ERRORS[404]["model"], "description": "already decided, or timed out"}}


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"] = Field(description="approve: publish the video; reject: remove it")
    reviewer: str = Field(min_length=1, max_length=100, description="the person deciding (recorded in the audit log)")
    comment: str = Field(default="", max_length=2000, description="why (recorded in the audit log)")


class ReviewInfo(BaseModel):
    id: str
    state: Literal["pending", "approved", "rejected"]
    created: str
    deadline: str
    output: str
    requested_by: str
    avatar_id: str
    language: str
    text: str
    content_id: str
    sha256: str
    frames: int
    duration_s: float
    quality: dict[str, float]
    quality_passed: bool
    batch: str | None
    flow_run_id: str | None
    decided_by: str | None
    comment: str
    decided: str | None
    reason: str
    audit_entry: int | None
    links: dict[str, str] = {}


def _info(record) -> dict:
    base = f"/v1/reviews/{record.id}"
    return {**record.public(), "links": {"self": base, "video": f"{base}/video", "thumbnail": f"{base}/thumbnail"}}


@router.get("", response_model=list[ReviewInfo], responses=ERRORS)
def reviews(
    key: Reviewer,
    context: Context,
    state: Annotated[Literal["pending", "approved", "rejected", "all"], Query()] = "pending",
) -> list[dict]:
    """Reviews waiting for a decision (or `?state=all`); overdue ones are rejected first (timed out)."""
    return [_info(record) for record in list_reviews(context.settings, state)]


@router.get("/{review_id}", response_model=ReviewInfo, responses=ERRORS)
def review(review_id: ReviewId, key: Reviewer, context: Context) -> dict:
    return _info(get_review(context.settings, review_id))


def _held_file(context: Context, review_id: str, name: str) -> Path:
    record = get_review(context.settings, review_id)
    path = Path(record.staged.get(name, ""))
    if record.state != "pending" or not path.is_file():
        raise ApiError(404, "not_found", f"review {review_id} is {record.state}; its held {name} is gone")
    return path


@router.get("/{review_id}/video", response_model=None, responses=ERRORS)
def review_video(review_id: ReviewId, key: Reviewer, context: Context) -> FileResponse:
    """The held video, for the reviewer to watch before deciding."""
    return video_response(_held_file(context, review_id, "video"), f"review-{review_id}.mp4", None)


@router.get("/{review_id}/thumbnail", response_model=None, responses=ERRORS)
def review_thumbnail(review_id: ReviewId, key: Reviewer, context: Context) -> FileResponse:
    return FileResponse(_held_file(context, review_id, "thumbnail"), media_type="image/jpeg")


@router.post("/{review_id}", response_model=ReviewInfo, responses=DECISION_ERRORS)
def decide_review(review_id: ReviewId, body: ReviewDecision, key: Reviewer, context: Context) -> dict:
    """Approve (publish atomically) or reject (remove) a held video; an audit entry names the reviewer."""
    record = decide(
        context.settings, review_id, body.decision, Decider(f"api-key:{key.id}", body.reviewer), body.comment
    )
    if record.flow_run_id:  # a paused `dhf render --wait-review` run waits for this decision: resume it
        from flows.review_flow import resume_waiting_run

        resume_waiting_run(record)
    return _info(record)
