"""Rendering studio pages: one Jinja2 environment over `api/studio/templates`, the navigation a
key's scopes allow, and the one-line error page.

Why the navigation is computed here rather than in each template: what a scope forbids is not shown
(the routes refuse it too, api.studio.session.require), and one list keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.studio.session import StudioUser

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PREFIX = "/studio"


@dataclass(frozen=True)
class NavItem:
    id: str
    label: str
    href: str
    scope: str | None  # shown only to keys that hold it


NAV = (
    NavItem("home", "Home", f"{PREFIX}", None),
    NavItem("new", "New video", f"{PREFIX}/videos/new", "render"),
    NavItem("jobs", "Jobs", f"{PREFIX}/jobs", "read"),
    NavItem("reviews", "Review queue", f"{PREFIX}/reviews", "review"),
    NavItem("library", "Library", f"{PREFIX}/library", "read"),
)


def templates() -> Jinja2Templates:
    """The studio's templates, every one autoescaped (text from keys, scripts and reviews is shown
    as text, never markup); built once per app by install_studio."""
    loader = jinja2.FileSystemLoader(TEMPLATES)
    return Jinja2Templates(env=jinja2.Environment(loader=loader, autoescape=True, auto_reload=False))


def nav_for(user: StudioUser | None) -> list[NavItem]:
    if user is None:
        return []
    return [item for item in NAV if item.scope is None or user.can(item.scope)]


def page(
    request: Request,
    name: str,
    title: str,
    user: StudioUser | None,
    *,
    active: str = "",
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render `name` (a template extending base.html) for `user`: header, nav, CSRF token."""
    engine: Jinja2Templates = request.app.state.studio_templates
    values = {
        "title": title,
        "user": user,
        "csrf": user.csrf if user is not None else "",
        "nav": nav_for(user),
        "active": active,
        **context,
    }
    return engine.TemplateResponse(request, name, values, status_code=status)


def error_page(request: Request, status: int, message: str, user: StudioUser | None = None) -> HTMLResponse:
    """A refusal or failure as a page with one line saying what is wrong and what to do."""
    titles = {403: "Not allowed", 404: "Not found", 409: "Already decided", 422: "Check the form"}
    title = titles.get(status, "Something went wrong" if status >= 500 else "Request refused")
    return page(request, "error.html", title, user, status=status, message=message)
