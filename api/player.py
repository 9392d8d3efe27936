"""The stream players the API serves: a streamed answer's page (`/v1/streams/<id>/<token>/player`, opened
with the answer's signed playback path, no key), a demo page (`/player`) where a person types a key and a
question, and their assets (`/player-assets/…`: the page script, its style and the vendored hls.js).

Why hls.js is vendored rather than loaded from a CDN: the product runs offline, and a bank's page must
not tell a third party who watches which answer. `scripts/vendor_js` (run by scripts/setup) puts it in
`api/static/vendor/` from the npm registry, checked against the sha256 pinned in `api/static/VENDORED`;
the server checks the same hash whenever it serves the file, and a missing or different file is answered with a
one-line error saying to run scripts/setup (the page shows it), not with someone else's code.

Why this router must be included BEFORE the streams router: `/v1/streams/<id>/<token>/player` and
`…/state.json` (the state the page shows) would otherwise match the streams router's
`/v1/streams/<id>/<token>/<file>` and be answered 404.

The pages load nothing from another origin (their Content-Security-Policy says so to the browser), and
send no referrer, so a playback path never leaves the page in a header.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.errors import ApiError
from api.playback import verify_playback

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
PINS = STATIC / "VENDORED"
ASSETS = "/player-assets"
DEMO_PAGE = "/player"

# hls.js runs its transmuxer in a worker made from a blob: URL and feeds the <video> from a blob: media source.
STREAM_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'"
)
# The demo page holds a key that a person typed: no other site may frame it, and its form is never submitted
# by the browser itself (form-action 'none'; its button is enabled by the script, which posts the key in a
# header): a click before the script ran must not put the key in a URL or a request body the page did not make.
DEMO_PAGE_CSP = STREAM_PAGE_CSP + "; frame-ancestors 'none'"
PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class Asset:
    path: Path
    media_type: str
    cache: str
    sha256: str | None = None  # pinned: vendored code is served only when it is exactly the pinned file


def vendored_pins(pins: Path = PINS) -> dict[str, str]:
    """name in vendor/ → its pinned sha256 ('-': not pinned), from api/static/VENDORED (the file
    scripts/vendor_js reads: one pin for both)."""
    entries = {}
    for line in pins.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 5 and not fields[0].startswith("#"):
            entries[fields[4]] = fields[3]
    return entries


def assets() -> dict[str, Asset]:
    sha256 = vendored_pins()["hls.min.js"]
    return {
        "player.js": Asset(STATIC / "player.js", "application/javascript", "no-cache"),
        "player.css": Asset(STATIC / "player.css", "text/css", "no-cache"),
        # a pinned version: the same name always holds the same bytes
        "hls.min.js": Asset(VENDOR / "hls.min.js", "application/javascript", "public, max-age=86400", sha256),
    }


def _read_checked(path: Path, sha256: str | None) -> bytes | None:
    """The file's bytes when they have the pinned hash (None otherwise). Checked at every request (about
    2 ms for hls.js; browsers cache it for a day): a re-run of scripts/vendor_js needs no restart."""
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        return None
    return data


def asset_bytes(asset: Asset) -> bytes:
    """The asset, or ApiError 503 with one line naming the fix when vendored code is missing or altered."""
    try:
        data = _read_checked(asset.path, asset.sha256)
    except FileNotFoundError:
        data = None
        if asset.sha256 is None:
            raise ApiError(404, "not_found", f"no player asset {asset.path.name}") from None
        problem = "is not installed"
    else:
        problem = "does not match its pinned sha256"
    if data is None:
        raise ApiError(
            503, "player_not_installed",
            f"the HLS player ({asset.path.name}) {problem} in api/static/vendor: run scripts/setup",
        )  # fmt: skip
    return data


def page(name: str, csp: str) -> HTMLResponse:
    return HTMLResponse((STATIC / name).read_text(encoding="utf-8"),
                        headers={**PAGE_HEADERS, "Content-Security-Policy": csp})  # fmt: skip


router = APIRouter(include_in_schema=False)


@router.get(DEMO_PAGE)
def demo_page() -> HTMLResponse:
    """Ask a question with a key typed in; the answer streams into the page."""
    return page("demo.html", DEMO_PAGE_CSP)


@router.get(f"{ASSETS}/{{name}}")
def player_asset(name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise ApiError(404, "not_found", f"no player asset {name}")
    return Response(asset_bytes(asset), media_type=asset.media_type,
                    headers={"Cache-Control": asset.cache, "X-Content-Type-Options": "nosniff"})  # fmt: skip


# What a viewer's page shows of a stream's state (the key holder's GET /v1/streams/<id> has everything).
VIEWER_STATE_FIELDS = ("status", "message", "mode", "released_segments", "released_seconds", "first_release_s",
                       "rendered_frames", "total_frames", "ended")  # fmt: skip


@router.get("/v1/streams/{stream_id}/{token}/state.json")
def stream_state(stream_id: str, token: str, request: Request) -> JSONResponse:
    """The stream's state for its player page (the signed path opens it, no key): status, the one-line
    message of a fallback or failure, how much is released."""
    context = request.app.state.context
    verify_playback(context.settings, stream_id, token)
    state = context.streams.state(stream_id)
    if state is None:
        raise ApiError(404, "not_found", f"no stream {stream_id}")
    public = state.public()
    return JSONResponse({name: public[name] for name in VIEWER_STATE_FIELDS},
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})  # fmt: skip


@router.get("/v1/streams/{stream_id}/{token}/player")
def stream_page(stream_id: str, token: str, request: Request) -> HTMLResponse:
    """The answer's own page: open it in a browser or an app's web view (no key: the token opens it)."""
    verify_playback(request.app.state.context.settings, stream_id, token)
    return page("player.html", STREAM_PAGE_CSP)
