"""Signed playback paths of streamed answers: `/v1/streams/<id>/<token>/master.m3u8`.

Why a token in the PATH rather than an API key: a `<video>` element, hls.js or a phone's native
player fetches the playlists and segments itself and sends no `Authorization` header; a key in a
query string would end up in logs and browser history. The token sits in the path, so the
playlists' relative URIs (`video.m3u8`, `enc/run0_00000.m4s`) inherit it and every request the
player makes carries it, while no key ever appears in a URL.

The token is `<expiry unix seconds>-<HMAC-SHA256(secret, "<stream id>:<expiry>"), 128 bits hex>`:
it opens exactly one stream until it expires. The secret is 32 random bytes in the API's home
(`<home>/api/playback.secret`, mode 0600), created once by the first server that needs it (an
exclusive create, so two processes sharing the home agree on one secret) and read per request, so
servers sharing the home (the API behind a balancer, a restarted server) accept each other's tokens.
Deleting the file invalidates every playback URL issued so far.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path

from api.errors import ApiError
from config import Settings

SECRET_FILE = "playback.secret"
TOKEN = re.compile(r"^([0-9]{10,12})-([0-9a-f]{32})$")
MAX_ANSWER_S = 3600  # far above the longest answer the text limit allows: a token outlives its stream's render


def secret_path(settings: Settings) -> Path:
    return settings.paths.home / "api" / SECRET_FILE


def playback_secret(settings: Settings) -> bytes:
    """The server's signing secret, created on first use (0600, never half-written: the file is
    written under a temporary name and linked into place, which fails if another process won)."""
    path = secret_path(settings)
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(4)}")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def _mac(secret: bytes, stream_id: str, expires: int) -> str:
    return hmac.new(secret, f"{stream_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def sign(secret: bytes, stream_id: str, expires: int) -> str:
    """The token that opens `stream_id` until the unix time `expires`."""
    return f"{expires}-{_mac(secret, stream_id, expires)}"


def playback_expiry(settings: Settings, created: float) -> int:
    """Until when a stream's playback URL works: its render, then as long as its folder is kept."""
    return int(created) + MAX_ANSWER_S + settings.streaming.keep_finished_s


def playback_token(settings: Settings, stream_id: str, created: float | None = None) -> str:
    created = time.time() if created is None else created
    return sign(playback_secret(settings), stream_id, playback_expiry(settings, created))


def check_token(secret: bytes, stream_id: str, token: str, now: float) -> None:
    """ApiError 403 unless `token` was signed with `secret` for `stream_id` and has not expired."""
    match = TOKEN.match(token or "")
    if match is None or not hmac.compare_digest(match.group(2), _mac(secret, stream_id, int(match.group(1)))):
        raise ApiError(403, "invalid_playback_token", "this playback URL is not valid; ask for a new stream")
    if int(match.group(1)) < now:
        raise ApiError(403, "playback_expired", "this playback URL has expired; ask for a new stream")


def verify_playback(settings: Settings, stream_id: str, token: str) -> None:
    """The check every playback route makes (playlists, segments, the player page): returns None when
    `token` opens `stream_id` now, else raises ApiError 403 with one line (invalid or expired)."""
    check_token(playback_secret(settings), stream_id, token, time.time())


def playback_links(stream_id: str, token: str) -> dict[str, str]:
    base = f"/v1/streams/{stream_id}/{token}"
    return {"master": f"{base}/master.m3u8", "player": f"{base}/player"}
