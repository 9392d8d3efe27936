"""`/v1/streams`: a streamed answer. POST answers at once with a signed playback URL; the player fetches
the HLS playlists and segments under that URL (no API key) while the answer renders; the finished
answer is also published as the usual MP4, captions and report.

Serving rule: `master.m3u8`, `video.m3u8`, `subs.m3u8`, `captions.vtt`, and only those segment, init
and WebVTT files that the current released playlists name; anything else is 404, even if the encoder
has written it (a segment the quality gate has not passed is never named, so it cannot be fetched).
The first request for a playlist of a stream that has released nothing yet waits (a few seconds at
most) for the first release or the end, so a player starts as soon as there is something to play
instead of one polling interval later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path
from fastapi.responses import FileResponse, PlainTextResponse, Response

from api.context import Context, Reader, Renderer
from api.errors import ERRORS, ApiError, ErrorBody
from api.keys import ApiKey
from api.playback import playback_expiry, playback_links, playback_secret, sign, verify_playback
from api.ranges import video_response
from api.routers.videos import CAPTIONS_RESPONSE, MP4_RESPONSE
from api.schemas import StreamAccepted, StreamId, StreamStatus, VideoCreate
from api.streams import ANSWER_FILE, FIXED_FILES, PLAYLISTS, StreamService
from config.errors import DhfError
from pipeline.auditing import audit_refusal
from pipeline.report import RenderReport
from pipeline.request import RenderRequest, ValidatedRequest, validate_request
from pipeline.review_store import review_required
from streaming.errors import StreamRefusedError
from streaming.state import VIDEO_PLAYLIST

router = APIRouter(prefix="/v1/streams", tags=["streams"])
CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".m4s": "video/mp4", ".mp4": "video/mp4",
                 ".vtt": "text/vtt; charset=utf-8"}  # fmt: skip
# The playback files are fetched by players on any origin (a bank's app, its web chat): the signed path
# is the credential, so CORS is open; nothing in them may be run or sniffed as another type.
PLAYBACK_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
BUSY_RESPONSE = {503: {"model": ErrorBody, "description": "the server cannot keep another stream ahead of playback"}}
REVIEW_RESPONSE = {409: {"model": ErrorBody, "description": "this avatar or configuration requires human review"}}
# How long a playlist request waits for a stream's first release: far above admission's start budget (a
# stream normally releases within it), below the player page's 15 s time-to-first-byte limit for a playlist
# (api/static/player.js) and hls.js' default 20 s load limit; then 503 + Retry-After.
FIRST_RELEASE_WAIT_S = 12.0
GROWING = frozenset(FIXED_FILES)  # the playlists and captions.vtt
FileName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_./-]{1,200}$", description="a file the playlists name")]
Token = Annotated[str, Path(pattern=r"^[0-9]{10,12}-[0-9a-f]{32}$", description="the playback token")]


class StreamsBusyError(DhfError):
    """Admission control refused the stream (audited like every refusal; the API answers 503)."""

    http_status = 503
    code = "streams_busy"


def links(stream_id: str) -> dict[str, str]:
    base = f"/v1/streams/{stream_id}"
    return {"self": base, "video": f"{base}/video", "captions": f"{base}/captions", "report": f"{base}/report"}


def own_stream(context: Context, stream_id: str, key: ApiKey) -> StreamService:
    """The streams service if this key may see `stream_id`; 404 otherwise, as if it did not exist."""
    owner = context.streams.owner(stream_id)
    if owner is None or (owner.key_id != key.id and not key.allows("admin")):
        raise ApiError(404, "not_found", f"no stream {stream_id} for this key")
    return context.streams


def status_body(context: Context, stream_id: str) -> dict:
    owner = context.streams.owner(stream_id)
    token = sign(playback_secret(context.settings), stream_id, owner.expires) if owner else ""
    return {
        **context.streams.public(stream_id),
        "playback": playback_links(stream_id, token),
        "links": links(stream_id),
    }


def checked_stream(context: Context, body: VideoCreate, key: ApiKey, stream_id: str) -> ValidatedRequest:
    """The request validated like a render (voice, avatar, licence, models, scene), and refused when the
    avatar or the configuration requires a person's review; every refusal audited under the key."""
    request = RenderRequest(
        text=body.text,
        avatar_id=body.avatar_id,
        language=body.language,
        output=context.streams.folder(stream_id) / ANSWER_FILE,
        voice=body.voice,
        channel=body.channel,
        purpose=body.purpose,
        scene=body.scene,
    )
    user = f"api-key:{key.id}"
    try:
        validated = validate_request(request, context.settings, actor=user)
        if review_required(validated, context.settings):
            raise StreamRefusedError(
                f"avatar '{body.avatar_id}' (licence {validated.license.license_id}) or this server's settings require "
                "a person's review before publishing, and a stream plays as it renders; use POST /v1/videos"
            )
    except DhfError as exc:
        audit_refusal(request, context.settings, user, exc)
        _remove_empty(request.output.parent)
        raise ApiError.from_dhf(exc) from exc
    return validated


def _remove_empty(folder: FilePath) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()  # validation created it (output checks); only if nothing is in it


@router.post(
    "", status_code=202, response_model=StreamAccepted, responses={**ERRORS, **BUSY_RESPONSE, **REVIEW_RESPONSE}
)
def create_stream(body: VideoCreate, key: Renderer, context: Context) -> StreamAccepted:
    """Start a streamed answer now (or refuse it now: 503 + Retry-After when the server cannot keep it
    ahead of playback). Play `playback.master` with any HLS player; poll `links.self` for its state."""
    created = time.time()
    streams = context.streams
    stream_id = streams.new_id()
    validated = checked_stream(context, body, key, stream_id)
    decision = streams.admit(stream_id, validated)
    if not decision.admitted:
        refusal = StreamsBusyError(f"{decision.reason}; retry in {decision.retry_after_s} s")
        audit_refusal(validated.request, context.settings, f"api-key:{key.id}", refusal)
        _remove_empty(validated.request.output.parent)
        headers = {"Retry-After": str(decision.retry_after_s)}
        raise ApiError(503, refusal.code, str(refusal), headers)
    expires = playback_expiry(context.settings, created)
    try:
        state = streams.start(stream_id, validated, key.id, created, expires)
    except BaseException:
        streams.admission.finish(stream_id)
        raise
    token = sign(playback_secret(context.settings), stream_id, expires)
    return StreamAccepted(
        stream_id=stream_id, status=state.status, playback=playback_links(stream_id, token), links=links(stream_id)
    )


@router.get("/{stream_id}", response_model=StreamStatus, responses=ERRORS)
def stream_status(stream_id: StreamId, key: Reader, context: Context) -> dict:
    """Where the stream stands (released segments, first-release time, fallback or failure), its playback URL."""
    own_stream(context, stream_id, key)
    return status_body(context, stream_id)


@router.delete("/{stream_id}", response_model=StreamStatus, responses=ERRORS)
def cancel_stream(stream_id: StreamId, key: Renderer, context: Context) -> dict:
    """Stop a running stream (it ends `failed`: cancelled; its playlist ends at the last released segment)."""
    streams = own_stream(context, stream_id, key)
    if streams.cancel(stream_id):
        deadline = time.monotonic() + 5.0
        while streams.is_running(stream_id) and time.monotonic() < deadline:
            time.sleep(0.05)
    return status_body(context, stream_id)


def answer_file(context: Context, stream_id: str, key: ApiKey, name: str):
    streams = own_stream(context, stream_id, key)
    state = streams.state(stream_id)
    if state is None or not state.ended or not state.outputs.get(name):
        status = state.status if state else "unknown"
        raise ApiError(404, "not_ready", f"stream {stream_id} is {status}; its {name} exists once it is published")
    path = FilePath(state.outputs[name])
    if not path.is_file():
        raise ApiError(404, "not_found", f"stream {stream_id} has no {name} file")
    return path


@router.get("/{stream_id}/video", response_model=None, responses={**ERRORS, **MP4_RESPONSE})
def stream_video(
    stream_id: StreamId,
    key: Reader,
    context: Context,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> FileResponse:
    """The published answer (the released segments' frames, joined, sealed) once the stream ended."""
    return video_response(answer_file(context, stream_id, key, "mp4"), f"{stream_id}.mp4", range_header)


@router.get("/{stream_id}/captions", response_model=None, responses={**ERRORS, **CAPTIONS_RESPONSE})
def stream_captions(
    stream_id: StreamId, key: Reader, context: Context, format: Literal["srt", "vtt"] = "srt"
) -> PlainTextResponse:
    path = answer_file(context, stream_id, key, format)
    media_type = "text/plain; charset=utf-8" if format == "srt" else "text/vtt; charset=utf-8"
    return PlainTextResponse(path.read_text(encoding="utf-8"), media_type=media_type)


@router.get("/{stream_id}/report", response_model=RenderReport, responses=ERRORS)
def stream_report(stream_id: StreamId, key: Reader, context: Context) -> RenderReport:
    return RenderReport.load(answer_file(context, stream_id, key, "report")).without_paths()


async def wait_first_release(streams: StreamService, stream_id: str, limit_s: float) -> None:
    """Until the stream released its first segment or ended, `limit_s` at most (a player's first
    request for the playlist should get something to play, not an empty playlist)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        state = streams.state(stream_id)
        if state is None or state.ended or state.released_segments > 0:
            return
        await asyncio.sleep(0.05)


@router.get("/{stream_id}/{token}/{name:path}", response_model=None, include_in_schema=False)
async def playback_file(stream_id: StreamId, token: Token, name: FileName, context: Context) -> Response:
    """A playback file (signed path, no API key): a playlist, the captions, or a released segment."""
    verify_playback(context.settings, stream_id, token)
    streams = context.streams
    if streams.state(stream_id) is None:
        raise ApiError(404, "not_found", f"no stream {stream_id}")
    if name in (PLAYLISTS[0], VIDEO_PLAYLIST):
        await wait_first_release(streams, stream_id, FIRST_RELEASE_WAIT_S)
    path = streams.released_file(stream_id, name)
    if path is None:
        state = streams.state(stream_id)
        if state is not None and state.status == "failed" and not state.released_segments:
            raise ApiError(404, "stream_failed", f"the stream failed before releasing anything: {state.message}"[:400])
        if state is not None and not state.ended and not state.released_segments and name in PLAYLISTS:
            message = f"the stream has released nothing after {FIRST_RELEASE_WAIT_S:g} s; retry in a second"
            raise ApiError(503, "not_started", message, {"Retry-After": "1"})
        raise ApiError(404, "not_released", f"{name} is not part of this stream's released playlists (yet)")
    media_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    if name in GROWING:  # rewritten (atomically) as the stream goes: read whole, never a torn length
        return Response(
            path.read_bytes(), media_type=media_type, headers={**PLAYBACK_HEADERS, "Cache-Control": "no-cache"}
        )
    # a released segment never changes
    headers = {**PLAYBACK_HEADERS, "Cache-Control": "private, max-age=3600, immutable"}
    return FileResponse(path, media_type=media_type, headers=headers)
