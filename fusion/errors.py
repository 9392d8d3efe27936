"""Errors the fusion engine raises; each message names the problem and the fix on one line."""

from config.errors import DhfError


class FusionError(DhfError):
    """Base class: a user-facing problem while rendering frames."""

    code = "fusion"
