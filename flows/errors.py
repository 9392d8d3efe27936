"""Errors of the orchestration layer."""

from config.errors import DhfError


class PoolError(DhfError):
    """The work pool cannot take the batch (no server, not set up, no worker); the message says what to run."""

    http_status = 503
    code = "pool_unavailable"
