"""The OpenAPI pages (/docs, /redoc) served from this server alone: they work offline and the
browser is told to load nothing else.

Why ReDoc's bundle is patched: its sidebar shows the vendor's logo from `cdn.redoc.ly`, hard-coded
in the JavaScript. The docs pages' Content-Security-Policy blocks it, but every visit then logs a
CSP violation in the browser console, and offline it is a failed request. The bundle is served
with that address pointing at a logo this server sends itself.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response

DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
OFFLINE_STATIC = "/static-offline-docs"  # fastapi_offline's own files (Swagger UI, favicon)
DOCS_STATIC = "/docs-static"  # what this module serves: the patched ReDoc bundle and its logo
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
REDOC_LOGO_PATH = f"{DOCS_STATIC}/redoc-logo.svg"
# A plain mark in the logo's place (the vendor's artwork is not redistributed).
REDOC_LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#32329f"/>'
    '<path d="M4 4h5a3 3 0 0 1 0 6H7l4 3H8L5 10.5V12H4z" fill="#fff"/></svg>'
)


def local_redoc_bundle() -> bytes:
    """fastapi_offline's ReDoc bundle with the vendor logo's CDN address replaced by ours."""
    bundle = (Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js").read_bytes()
    # relative to the /redoc page, so that it also works under a proxy's root path
    return bundle.replace(REDOC_CDN_LOGO, REDOC_LOGO_PATH.lstrip("/").encode())


def install_docs(app: FastAPI) -> None:
    """/redoc on the local bundle, its logo, and the CSP on every docs page (/docs comes from
    fastapi_offline, created with `redoc_url=None`)."""
    bundle = local_redoc_bundle()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{OFFLINE_STATIC}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(f"{DOCS_STATIC}/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(bundle, media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get(REDOC_LOGO_PATH, include_in_schema=False)
    async def redoc_logo() -> Response:
        return Response(REDOC_LOGO_SVG, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.middleware("http")
    async def docs_stay_local(request: Request, call_next):
        response = await call_next(request)
        if request.url.path in DOCS_PATHS:
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response
