"""Every API error is JSON `{"error": {"code", "message"}}` with a 4xx/5xx status.

Errors of the factory (`DhfError`) carry their own HTTP status and code, so the API maps them by
type in one handler; `ApiError` is for what only HTTP knows (auth, limits, not found). The code
names the problem (`invalid_json`, `scene`, `not_found`), never the layer that noticed it, so a
client can branch on it without parsing the message.

Why every validation error is listed (`error.details`, each with its `loc`): a client fixing a
request should see all its mistakes at once and where each one is, as FastAPI's own `detail` list
shows them, not one per round trip.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.errors import DhfError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    @classmethod
    def from_dhf(cls, exc: DhfError) -> ApiError:
        return cls(exc.http_status, exc.code, str(exc).splitlines()[0][:400])


class FieldError(BaseModel):
    loc: list[str | int]  # where: ["body", "text"], ["query", "state"], ["path", "job_id"]
    message: str
    type: str  # pydantic's error type, e.g. string_too_short, missing, extra_forbidden


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[FieldError] | None = None  # validation errors: every one, with its location


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "missing, unknown or revoked API key",
        403: "the key lacks the scope, or the license does not allow this use",
        404: "no such job or avatar for this key",
        413: "request body too large",
        422: "invalid request",
        429: "rate limit or too many active jobs for this key (see Retry-After)",
        503: "the server has too many active jobs",
    }.items()
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, details: list[dict] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def http_code(status: int) -> str:
    """A semantic code for an HTTP-level error (unknown route, wrong method): its reason phrase."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def _where(loc: tuple | list) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def json_syntax_message(error: dict[str, Any], body: Any) -> str:
    """`Expecting ',' delimiter: line 1 column 10 (char 9)` instead of FastAPI's `9: JSON decode error`."""
    reason = (error.get("ctx") or {}).get("error", "invalid JSON")
    position = error["loc"][-1] if error.get("loc") and isinstance(error["loc"][-1], int) else None
    if isinstance(body, str | bytes) and position is not None:
        document = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return f"the request body is not valid JSON: {json.JSONDecodeError(reason, document, position)}"
    return f"the request body is not valid JSON: {reason}"


def validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    syntax = next((error for error in errors if error.get("type") == "json_invalid"), None)
    if syntax is not None:
        return error_response(422, "invalid_json", json_syntax_message(syntax, exc.body))
    details = [
        {"loc": list(error.get("loc", ())), "message": error.get("msg", "invalid"), "type": error.get("type", "")}
        for error in errors
    ]
    message = "; ".join(f"{_where(d['loc'])}: {d['message']}" for d in details) or "invalid request"
    return error_response(422, "invalid_request", message[:1000], details=details)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(DhfError)
    async def factory_error(request: Request, exc: DhfError):
        error = ApiError.from_dhf(exc)
        return error_response(error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, http_code(exc.status_code), str(exc.detail), exc.headers)
