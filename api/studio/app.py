"""The studio inside the API process: its page routers, its static files under /studio/static,
`/` → `/studio`, HTML error pages for /studio paths, and a strict Content-Security-Policy.

Why one CSP stricter than /docs (api.docs.DOCS_CSP): the studio has no inline scripts or styles
(studio.js and studio.css are files), so `'unsafe-inline'` is not needed and a script injected
into a page through some unescaped text would not run. `form-action 'self'` and
`frame-ancestors 'none'` keep forms posting here and the pages out of other sites' frames.

Why the error handlers dispatch on the path: the REST API answers errors as JSON
(api.errors); the same errors raised under /studio (a factory refusal, a 404, a bad form) become
a page with one line, for a person rather than a program.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import python_multipart  # noqa: F401 - parses the studio's forms (FastAPI's Form/File); a missing install fails here, by name
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError
from api.studio import library_pages, review_pages, sign_in_pages, video_pages
from api.studio.pages import PREFIX, STATIC, error_page, templates
from api.studio.session import SignInRequired, StudioForbidden, StudioUser, current_user
from config.errors import DhfError

STUDIO_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def _user_or_none(request: Request) -> StudioUser | None:
    try:
        return current_user(request)
    except (SignInRequired, DhfError):
        return None


def _message(exc: Exception) -> tuple[int, str]:
    """(status, one line) for an error raised under /studio."""
    if isinstance(exc, StudioForbidden):
        return exc.status, exc.message
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, DhfError):
        return exc.http_status, str(exc).splitlines()[0][:400]
    if isinstance(exc, RequestValidationError):
        fields = sorted({str(error.get("loc", ("", "?"))[-1]) for error in exc.errors()})
        return 422, f"the form is missing or has invalid fields: {', '.join(fields)}; fill them in and send it again"
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return 404, "there is no such page in the studio; use the navigation above"
        return exc.status_code, str(exc.detail)
    return 500, str(exc).splitlines()[0][:400] if str(exc) else type(exc).__name__


def _install_error_pages(app: FastAPI) -> None:
    for kind in (ApiError, DhfError, RequestValidationError, StarletteHTTPException):
        api_handler = app.exception_handlers.get(kind)

        async def handler(request: Request, exc: Exception, api_handler=api_handler) -> Response:
            if not request.url.path.startswith(PREFIX) or api_handler is None:
                if api_handler is None:
                    raise exc
                return await api_handler(request, exc)
            status, message = _message(exc)
            return error_page(request, status, message, _user_or_none(request))

        app.add_exception_handler(kind, handler)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        return error_page(request, 401, "your session has ended; sign in again and resend the form")

    @app.exception_handler(StudioForbidden)
    async def forbidden(request: Request, exc: StudioForbidden) -> Response:
        return error_page(request, exc.status, exc.message, _user_or_none(request))


def install_studio(app: FastAPI) -> None:
    """Add the studio to the API app (called by api.app.create_app after its error handlers)."""
    app.state.studio_templates = templates()
    _install_error_pages(app)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=303)

    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="studio-static")
    for pages in (sign_in_pages, video_pages, review_pages, library_pages):
        app.include_router(pages.router)

    @app.middleware("http")
    async def studio_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path == PREFIX or request.url.path.startswith(f"{PREFIX}/"):
            response.headers["Content-Security-Policy"] = STUDIO_CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            if response.headers.get("content-type", "").startswith("text/html"):
                response.headers["Cache-Control"] = "no-store"  # pages hold the CSRF token and the key's name
        return response
