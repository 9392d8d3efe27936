"""Why a stream is refused before it starts (the API maps it to its HTTP answer)."""

from __future__ import annotations

from config.errors import DhfError


class StreamRefusedError(DhfError):
    """This answer cannot stream (it needs a person's review first, or it is not a text answer); the
    message says why and what to do instead (POST /v1/videos)."""

    http_status = 409
    code = "stream_refused"
