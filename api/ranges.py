"""Video downloads with HTTP range requests, whose errors are JSON like every other API error.

Why: Starlette's FileResponse answers a malformed or unsatisfiable `Range` with a text/plain body;
a client that parses `{"error": ...}` everywhere else would choke on it. The header is checked here
first (RFC 9110 §14: bytes=first-last, first-, -suffix; comma-separated), then Starlette serves it.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.responses import FileResponse

from api.errors import ApiError

SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def check_range(header: str | None, size: int) -> None:
    """ApiError 400 for a malformed Range header, 416 (with Content-Range) when no range fits the file."""
    if header is None:
        return
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        raise ApiError(400, "bad_range", f"malformed Range header '{header[:80]}'; use e.g. bytes=0-1023")
    satisfiable = False
    for spec in specs.split(","):
        match = SPEC.match(spec)
        if match is None or match.groups() == ("", ""):
            raise ApiError(400, "bad_range", f"malformed Range header '{header[:80]}'; use e.g. bytes=0-1023")
        first, last = match.groups()
        if first and last and int(last) < int(first):
            raise ApiError(400, "bad_range", f"Range '{spec.strip()}' ends before it starts; use e.g. bytes=0-1023")
        satisfiable |= (int(first) < size) if first else int(last) > 0
    if not satisfiable:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"Range '{header[:80]}' lies outside the file ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        )


def video_response(path: Path, filename: str, range_header: str | None) -> FileResponse:
    check_range(range_header, Path(path).stat().st_size)
    return FileResponse(path, media_type="video/mp4", filename=filename)
