"""Every API error is JSON `{"error": {"code", "message"}}` with a 4xx/5xx status.

Errors of the factory (`DhfError`) carry their own HTTP status and code, so the API maps them by
type in one handler; `ApiError` is for what only HTTP knows (auth, limits, not found)."""

from __future__ import annotations

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


class ErrorDetail(BaseModel):
    code: str
    message: str


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


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


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
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}"[:300])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, "http_error", str(exc.detail))
