"""Request limits: a token bucket per API key, and a request body size cap (ASGI middleware)."""

from __future__ import annotations

import json
import threading
import time


class RateLimiter:
    """`per_minute` requests per key, refilled continuously; `check` returns seconds to wait (0 = go)."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def check(self, key_id: str) -> float:
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self.buckets[key_id] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self.buckets[key_id] = (tokens - 1.0, now)
            return 0.0


class BodySizeLimit:
    """Refuses bodies over `limit` bytes with 413: by Content-Length at once, and chunked bodies by
    reading them (bounded) before the app sees them, then replaying them to it."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _too_large(send, self.limit)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await _too_large(send, self.limit)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"error": {"code": "body_too_large", "message": f"request body over {limit} bytes"}}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
