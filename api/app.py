"""The HTTP API (FastAPI): generation jobs for other systems (a CMS, a chatbot back office).

Every route but /healthz and /metrics needs an API key (`Authorization: Bearer dhf_…` or
`X-API-Key: dhf_…`): 401 when it is missing, unknown or revoked, 403 when it lacks the route's
scope. A job is visible only to the key that created it (or an `admin` key); others get 404, as if
it did not exist. Every error is JSON `{"error": {"code", "message"}}` (api.errors). Requests are
checked up front (text length, language, voice, avatar, license scope) so refusals are immediate,
and audited under `api-key:<id>` like every render. Every request is logged with its id and the
key's id (api.access_log).
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline

from api.access_log import AccessLog
from api.context import ApiContext
from api.docs import install_docs
from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.player import router as player_router
from api.routers import avatars, batches, compat, operations, reviews, streams, videos
from api.studio.app import install_studio
from config import Settings

logger = logging.getLogger("dhf.api")


def prewarm(context: ApiContext) -> None:
    """Warm the streams' models and engines for the configured avatars, off the start-up path (the
    server answers at once; a stream that starts meanwhile warms what it needs itself)."""
    avatars = context.settings.streaming.prewarm_avatars
    if context.warm is None or not avatars:
        return

    def run() -> None:
        try:
            context.warm.prepare(avatars)
        except Exception as exc:  # a missing avatar must not stop the server: its streams will say why
            logger.warning("stream prewarm of %s failed: %s", ", ".join(avatars), str(exc).splitlines()[0][:300])

    threading.Thread(target=run, name="dhf-stream-prewarm", daemon=True).start()


def create_app(settings: Settings, context: ApiContext | None = None) -> FastAPI:
    context = context or ApiContext.create(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        context.runner.resume()
        context.streams.recover()
        prewarm(context)
        yield
        context.streams.shutdown()
        context.runner.shutdown()
        if context.warm is not None:
            context.warm.close()

    # /docs and /redoc with Swagger UI and ReDoc served from the package, not a CDN: they work offline.
    app = FastAPIOffline(
        redoc_url=None,  # api.docs serves /redoc: its bundle without the vendor's CDN logo
        title="Digital Human Factory API",
        version="1.0",
        description="Licensed, labeled talking-head videos from text. Keys: `dhf api-key create`.",
        lifespan=lifespan,
    )
    app.state.context = context
    install_error_handlers(app)

    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        context.metrics.count_response(response.status_code)
        return response

    install_docs(app)
    install_studio(app)  # the browser studio under /studio (after the error handlers it dispatches to)

    # the player's routes before the streams router: its `/v1/streams/<id>/<token>/<file>` would match
    # `/v1/streams/<id>/<token>/player` and `…/state.json` first (api/player.py)
    routers = (videos.router, player_router, streams.router, batches.router, reviews.router, avatars.router)
    for router in (*routers, compat.router, operations.router):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, limit=settings.api.max_body_bytes)
    app.add_middleware(AccessLog)  # added last: outermost, so the body limit's 413 is logged too
    return app
