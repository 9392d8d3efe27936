"""Sign-in, sign-out and the home page (the key's recent jobs).

Why the sign-in form takes an API key: the studio has no user database of its own; an editor signs
in with the key an operator made for them (`dhf api-key create --name anna --scopes render,read`),
and the studio then sees and may do exactly what that key may do through the REST API.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.context import get_context
from api.studio.pages import PREFIX, page
from api.studio.session import (
    COOKIE,
    COOKIE_PATH,
    PRE_COOKIE,
    SessionStore,
    Signed,
    SignInRequired,
    check_csrf,
    check_sign_in_token,
    clear_session_cookie,
    current_user,
    set_session_cookie,
    set_sign_in_cookie,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
RECENT_JOBS = 10


def _sign_in_form(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", "Sign in", None, status=status, error=error, sign_in_csrf=token)
    set_sign_in_cookie(response, request, token)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> Response:
    try:
        current_user(request)
        return RedirectResponse(PREFIX, status_code=303)  # already signed in
    except SignInRequired:
        return _sign_in_form(request)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request, api_key: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """Check the key with the API's KeyStore; a session (cookie) on success, the form again with one
    line on failure (which of unknown, malformed or revoked is not told: keys cannot be probed)."""
    check_sign_in_token(request, csrf)
    context = get_context(request)
    key = context.keys.authenticate(api_key.strip())
    if key is None:
        message = "that API key is unknown or revoked; paste the whole key (dhf_…) your operator gave you"
        return _sign_in_form(request, message, status=401)
    store = SessionStore.of(context)
    session_id, _ = store.create(key.id)
    response = RedirectResponse(PREFIX, status_code=303)
    set_session_cookie(response, request, session_id, store.policy)
    response.delete_cookie(PRE_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Delete the session server-side (the cookie alone would still open it until it expires)."""
    try:
        user = current_user(request)
    except SignInRequired:
        return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    await check_csrf(request, user)
    SessionStore.of(get_context(request)).delete(request.cookies.get(COOKIE, ""))
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    clear_session_cookie(response, request)
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request, user: Signed) -> HTMLResponse:
    context = get_context(request)
    jobs = context.jobs.recent(user.key.id, limit=RECENT_JOBS) if user.can("read") else []
    return page(request, "home.html", "Home", user, active="home", jobs=jobs)
