"""The review queue in the studio: pending videos, one review page per video, decided reviews.

Every decision goes through `pipeline.review.decide`, exactly like `POST /v1/reviews/<id>`
(api.routers.reviews) and `dhf review approve|reject`: the same audit entry, the same separation
of duties (the key that requested a video cannot approve it), the same atomic publication. The
page only explains in advance what decide() would refuse; decide() still refuses it.

Why the video plays through a signed, short-lived URL (`/studio/reviews/<id>/<token>/video.mp4`,
api.playback's HMAC token scheme for the id `review:<id>`): the held file must not be reachable
by guessing its review id, and a URL copied out of the page stops working after a few minutes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from api.context import get_context
from api.errors import ApiError
from api.playback import check_token, playback_secret, sign
from api.ranges import video_response
from api.studio.pages import PREFIX, page
from api.studio.scores import score_rows
from api.studio.session import StudioUser, posting, require
from config import Settings
from config.errors import DhfError
from pipeline.review import Decider, decide, get_review, list_reviews
from pipeline.review_store import ReviewRecord

router = APIRouter(prefix=f"{PREFIX}/reviews", include_in_schema=False)
ReviewId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{12}$")]
Token = Annotated[str, PathParameter(pattern=r"^[0-9]{10,12}-[0-9a-f]{32}$")]
VIDEO_URL_TTL_S = 600  # long enough to watch a held video (a few minutes at most), short enough to be useless later
DECIDED_SHOWN = 50
ReviewUser = Annotated[StudioUser, Depends(require("review"))]
Deciding = Annotated[StudioUser, Depends(posting("review"))]


def _signed(settings: Settings, review_id: str) -> str:
    return sign(playback_secret(settings), f"review:{review_id}", int(time.time()) + VIDEO_URL_TTL_S)


def caption_text(path: Path) -> str:
    """The words of a WebVTT file: the text of each cue (the lines after its timing line), without
    the header, cue ids, NOTE and STYLE blocks."""
    words = []
    for block in path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n").split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines()]
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is not None and not lines[0].startswith(("NOTE", "STYLE", "WEBVTT")):
            words.extend(line for line in lines[timing + 1 :] if line)
    return " ".join(words)


def requested_by_me(record: ReviewRecord, user: StudioUser) -> bool:
    return record.requested_by == f"api-key:{user.key.id}"


@router.get("", response_class=HTMLResponse)
def queue(request: Request, user: ReviewUser) -> HTMLResponse:
    """Pending reviews (oldest first: the nearest deadline on top) and the latest decided ones."""
    settings = get_context(request).settings
    pending = sorted(list_reviews(settings, "pending"), key=lambda record: record.deadline)
    decided = [record for record in list_reviews(settings, "all") if record.state != "pending"]
    decided.sort(key=lambda record: record.decided or record.created, reverse=True)
    return page(
        request, "reviews.html", "Review queue", user, active="reviews",
        pending=pending, decided=decided[:DECIDED_SHOWN], mine=[r.id for r in pending if requested_by_me(r, user)],
    )  # fmt: skip


def _review_page(request: Request, user: StudioUser, review_id: str, error: str = "", status: int = 200) -> Response:
    settings = get_context(request).settings
    record = get_review(settings, review_id)
    video = poster = None
    captions = ""
    if record.state == "pending":
        token = _signed(settings, review_id)
        video = f"{PREFIX}/reviews/{review_id}/{token}/video.mp4"
        poster = f"{PREFIX}/reviews/{review_id}/{token}/poster.jpg" if "thumbnail" in record.staged else None
        vtt = Path(record.staged.get("vtt", ""))
        captions = caption_text(vtt) if vtt.is_file() else ""
    own = requested_by_me(record, user)
    return page(
        request, "review.html", f"Review {review_id}", user, active="reviews", status=status,
        record=record, video=video, poster=poster, captions=captions, error=error,
        scores=score_rows(record.quality, settings, record.frames),
        own=own, may_approve=not own or f"api-key:{user.key.id}" in settings.governance.break_glass,
    )  # fmt: skip


@router.get("/{review_id}", response_class=HTMLResponse)
def review(request: Request, review_id: ReviewId, user: ReviewUser) -> Response:
    return _review_page(request, user, review_id)


@router.post("/{review_id}", response_class=HTMLResponse)
def decide_review(
    request: Request,
    review_id: ReviewId,
    user: Deciding,
    decision: Annotated[str, Form()] = "",
    reviewer: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Approve or reject through pipeline.review.decide (audited under `api-key:<id>` with the name
    given); a refusal (separation of duties, already decided, timed out) is shown on the page."""
    if decision not in ("approve", "reject"):
        return _review_page(request, user, review_id, "choose Approve or Reject, then send the decision", 422)
    settings = get_context(request).settings
    try:
        decider = Decider(f"api-key:{user.key.id}", reviewer.strip() or user.key.name)
        record = decide(settings, review_id, decision, decider, comment.strip())  # type: ignore[arg-type]
    except DhfError as exc:
        return _review_page(request, user, review_id, str(exc).splitlines()[0][:400], exc.http_status)
    if record.flow_run_id:  # a paused `dhf render --wait-review` run waits for this decision: resume it
        from flows.review_flow import resume_waiting_run

        resume_waiting_run(record)
    return RedirectResponse(f"{PREFIX}/reviews/{review_id}", status_code=303)


def _held(request: Request, review_id: str, token: str, name: str) -> Path:
    """The held file `name` of a pending review, if `token` opens it now (403 otherwise, 404 once decided)."""
    settings = get_context(request).settings
    check_token(playback_secret(settings), f"review:{review_id}", token, time.time())
    record = get_review(settings, review_id)
    path = Path(record.staged.get(name, ""))
    if record.state != "pending" or not path.is_file():
        raise ApiError(404, "not_found", f"review {review_id} is {record.state}; its held {name} is gone")
    return path


@router.get("/{review_id}/{token}/video.mp4", response_model=None)
def held_video(request: Request, review_id: ReviewId, token: Token) -> Response:
    """The held video for the page's `<video>` (ranges for seeking); the signed token is the access check."""
    path = _held(request, review_id, token, "video")
    return video_response(path, f"review-{review_id}.mp4", request.headers.get("range"))


@router.get("/{review_id}/{token}/poster.jpg", response_model=None)
def held_poster(request: Request, review_id: ReviewId, token: Token) -> FileResponse:
    return FileResponse(_held(request, review_id, token, "thumbnail"), media_type="image/jpeg")
