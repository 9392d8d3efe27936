"""Errors of the quality monitors."""

from __future__ import annotations

from pathlib import Path

from config.errors import EXIT_QUALITY_FAILED, DhfError


class QualityError(DhfError):
    """The video cannot be evaluated (no face, no audio, unreadable)."""

    code = "not_evaluable"


class QualityGateError(DhfError):
    """A video broke a quality threshold (its report and the audit log say which)."""

    exit_code = EXIT_QUALITY_FAILED
    code = "quality_failed"

    def __init__(self, message: str, report_path: Path | None = None) -> None:
        super().__init__(message)
        self.report_path = report_path
