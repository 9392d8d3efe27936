"""The access log: one line per request with its request id and the API key's id, never the secret.

Why our own and not uvicorn's: uvicorn's line knows neither which key asked nor an id that a client
can quote in a support request. The id is the client's `X-Request-ID` when it is a plain token
(so a proxy's or a caller's id carries through), a new one otherwise; it is sent back as
`X-Request-ID` on every answer, the 413 of the body limit included (this middleware is outermost).
The key id is what authentication put on the request state (`api.context.caller`); headers and
query strings are never logged, so neither is a key.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
import uuid

ACCESS_LOGGER = "dhf.api.access"
REQUEST_ID_HEADER = b"x-request-id"
KEY_ID_STATE = "api_key_id"  # request.state.api_key_id: set by authentication, read here
_PLAIN_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")

logger = logging.getLogger(ACCESS_LOGGER)


def request_id(scope) -> str:
    """The caller's id when it is a plain token (no spaces or control characters), else a new one."""
    given = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER, b"")
    return given.decode("ascii") if _PLAIN_ID.match(given) else uuid.uuid4().hex


class AccessLog:
    """ASGI middleware: `request_id=… key_id=… method=… path=… status=… duration_ms=… client=…`."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        status = [500]  # an exception before the response started ends as a 500

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID_HEADER, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            client = scope.get("client") or ("-", 0)
            logger.info(
                "request_id=%s key_id=%s method=%s path=%s status=%d duration_ms=%.1f client=%s",
                rid,
                state.get(KEY_ID_STATE) or "-",
                scope["method"],
                urllib.parse.quote(scope["path"], safe="/:@!$&'()*+,;=-._~")[:300],  # no spaces or newlines
                status[0],
                (time.perf_counter() - started) * 1000,
                client[0],
            )
