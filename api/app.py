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

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline

from api.access_log import AccessLog
from api.context import ApiContext
from api.docs import install_docs
from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.routers import avatars, batches, compat, operations, reviews, videos
from config import Settings


def create_app(settings: Settings) -> FastAPI:
    context = ApiContext.create(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        context.runner.resume()
        yield
        context.runner.shutdown()

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

    for router in (videos.router, batches.router, reviews.router, avatars.router, compat.router, operations.router):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, limit=settings.api.max_body_bytes)
    app.add_middleware(AccessLog)  # added last: outermost, so the body limit's 413 is logged too
    return app
