"""Studio sessions, CSRF tokens and scope checks.

Why server-side sessions rather than the API key in a cookie: the key is a long-lived secret that
also opens the REST API; the browser keeps only a random session id (`HttpOnly`, `SameSite=Strict`,
`Path=/studio`, `Secure` over https) that sign-out or expiry makes worthless. The store keeps the
SHA-256 of the id, never the id, so a copy of the database opens no session. The key itself is
re-read on every request: revoking it ends its sessions at once.

Why a CSRF token although the cookie is `SameSite=Strict`: older browsers and same-site subdomains
ignore SameSite; every form carries the session's token in a hidden field (`csrf`) and every fetch
POST in the `X-CSRF-Token` header, compared in constant time. The sign-in form, before any session
exists, uses a double-submit token: a random value in a short-lived cookie and the same value in
the form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request, Response

from api.access_log import KEY_ID_STATE
from api.context import ApiContext, get_context
from api.keys import ApiKey
from api.store import connect

COOKIE = "dhf_studio"
PRE_COOKIE = "dhf_studio_signin"  # the sign-in form's double-submit CSRF value
COOKIE_PATH = "/studio"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires)",
)


@dataclass(frozen=True)
class SessionPolicy:
    """How long a studio session lives (absolute, from sign-in) and the sign-in form's token."""

    ttl_s: float = 8 * 3600  # one working day: an editor signs in once in the morning
    sign_in_form_ttl_s: int = 3600


class SignInRequired(Exception):  # noqa: N818 - a signal (redirect to sign-in), named for what it asks
    """No valid session: the page redirects to the sign-in form."""


class StudioForbidden(Exception):  # noqa: N818 - it is the refusal page itself, not an error of the code
    """A refusal shown as a one-line 403 page (missing scope, bad or missing CSRF token)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Session:
    key_id: str
    csrf: str
    created: float
    expires: float


@dataclass(frozen=True)
class StudioUser:
    """The signed-in key and its session: what every studio page is rendered for."""

    key: ApiKey
    session: Session

    def can(self, scope: str) -> bool:
        return self.key.allows(scope)

    @property
    def csrf(self) -> str:
        return self.session.csrf


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions in `<home>/api/studio.sqlite` (shared by servers on one home, like the keys)."""

    def __init__(self, path: Path, policy: SessionPolicy = SessionPolicy()) -> None:
        self.path, self.policy = Path(path), policy

    @classmethod
    def of(cls, context: ApiContext) -> SessionStore:
        return cls(context.home / "studio.sqlite")

    def create(self, key_id: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for `key_id`; returns the id for the cookie (never stored) and the session."""
        now = dt.datetime.now(dt.UTC).timestamp() if now is None else now
        session_id = secrets.token_urlsafe(32)
        session = Session(key_id, secrets.token_urlsafe(32), now, now + self.policy.ttl_s)
        with connect(self.path, _SCHEMA) as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            db.execute(
                "INSERT INTO sessions (id_hash, key_id, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
                (_hash(session_id), key_id, session.csrf, session.created, session.expires),
            )
        return session_id, session

    def get(self, session_id: str, now: float | None = None) -> Session | None:
        if not session_id:
            return None
        now = dt.datetime.now(dt.UTC).timestamp() if now is None else now
        with connect(self.path, _SCHEMA) as db:
            row = db.execute("SELECT * FROM sessions WHERE id_hash = ?", (_hash(session_id),)).fetchone()
        if row is None or row["expires"] < now:
            return None
        return Session(row["key_id"], row["csrf"], row["created"], row["expires"])

    def delete(self, session_id: str) -> None:
        with connect(self.path, _SCHEMA) as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(session_id),))


def secure(request: Request) -> bool:
    """Cookies get `Secure` when the page was served over https (directly or, with uvicorn's
    --proxy-headers, behind a TLS proxy)."""
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, session_id: str, policy: SessionPolicy) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(policy.ttl_s),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure(request))


def set_sign_in_cookie(
    response: Response, request: Request, token: str, policy: SessionPolicy = SessionPolicy()
) -> None:
    """The sign-in form's double-submit token as a cookie (the form carries the same value)."""
    response.set_cookie(
        PRE_COOKIE,
        token,
        max_age=policy.sign_in_form_ttl_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def check_sign_in_token(request: Request, submitted: str) -> None:
    expected = request.cookies.get(PRE_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), (submitted or "").encode()):
        raise StudioForbidden("the sign-in form expired or was not sent from this site; reload the page and sign in")


def current_user(request: Request) -> StudioUser:
    """The signed-in user, or SignInRequired (expired, signed out, unknown or revoked key)."""
    context: ApiContext = get_context(request)
    session = SessionStore.of(context).get(request.cookies.get(COOKIE, ""))
    if session is None:
        raise SignInRequired()
    key = next((k for k in context.keys.list() if k.id == session.key_id), None)
    if key is None or key.revoked:
        raise SignInRequired()
    setattr(request.state, KEY_ID_STATE, key.id)  # the access log names who asked, never the secret
    return StudioUser(key, session)


def require(scope: str | None = None):
    """A dependency: the signed-in user, who must hold `scope` (else a one-line 403 page)."""

    def dependency(request: Request) -> StudioUser:
        user = current_user(request)
        if scope is not None and not user.can(scope):
            message = f"your key '{user.key.name}' lacks the '{scope}' scope; ask an admin for a key with it"
            raise StudioForbidden(message)
        return user

    return dependency


async def check_csrf(request: Request, user: StudioUser) -> None:
    """Refuse a POST whose CSRF token (form field `csrf` or header X-CSRF-Token) is not the session's."""
    submitted = request.headers.get(CSRF_HEADER, "")
    if not submitted and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # cached by Starlette: the route's own Form() parameters still work
        value = form.get(CSRF_FIELD, "")
        submitted = value if isinstance(value, str) else ""
    if not submitted or not hmac.compare_digest(submitted.encode(), user.csrf.encode()):
        raise StudioForbidden("the form's security token is missing or wrong; reload the page and try again")


def posting(scope: str | None = None):
    """A dependency for POST routes: the signed-in user holding `scope`, with a valid CSRF token."""

    signed_in = require(scope)

    # `Depends` as the default, not inside `Annotated`: with postponed annotations FastAPI evaluates an
    # annotation in the module's globals, where this closure's `scope` does not exist
    async def dependency(request: Request, user: StudioUser = Depends(signed_in)) -> StudioUser:  # noqa: B008
        await check_csrf(request, user)
        return user

    return dependency


Signed = Annotated[StudioUser, Depends(require())]
