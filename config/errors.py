"""The one error hierarchy of the factory.

Why one base in the bottom layer: every user-facing failure, from any stage, must end as one line
naming the problem and the fix, with the right exit code on the command line and the right status in
the REST API. Each subclass declares both, so `cli/` and `api/` map errors by type (one `except
DhfError`), never by lists of names or `type(exc).__name__` comparisons.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_USER_ERROR = 2
EXIT_VERIFICATION_FAILED = 3  # a check found a problem (audit chain, AI marks)
EXIT_QUALITY_FAILED = 4  # rendered, but not published: the quality gate (or some batch videos) failed
# `dhf verify` as a publication gate (governance.verify): why a video must not be published
EXIT_AUDIT_TAMPERED = 5  # the audit log (or a witness of it) fails verification: nothing it says counts
EXIT_NOT_APPROVED = 6  # review was required and nobody approved this file (pending, or another file)
EXIT_REVIEW_REJECTED = 7  # review was required and the video was rejected (or timed out)


class DhfError(Exception):
    """A problem the user can fix; `str(exc)` is one line: what is wrong and what to do.

    `exit_code`: the CLI's exit status. `http_status` and `code`: the REST API's answer."""

    exit_code: ClassVar[int] = EXIT_USER_ERROR
    http_status: ClassVar[int] = 422
    code: ClassVar[str] = "refused"


class ConfigError(DhfError):
    """A configuration file is missing or malformed, or names an unknown key or a bad value."""

    http_status = 500  # in the API, bad configuration is the server's problem, not the caller's
    code = "server_configuration"


class OutputPathError(DhfError):
    """The requested output cannot be written (a folder, read-only, immutable, not creatable).

    Checked before any compute, so a 10 s render is not thrown away at the last rename."""

    code = "output_path"
