"""Errors of the orchestration layer, and the SIGTERM interrupt the CLI raises."""

from config.errors import DhfError


class PoolError(DhfError):
    """The work pool cannot take the batch (no server, not set up, no worker); the message says what to run."""

    http_status = 503
    code = "pool_unavailable"


class PrefectUnavailableError(DhfError):
    """The configured Prefect server does not answer (down, hung, unreachable) or failed mid-run.

    Why an error and not a silent local render: whoever set PREFECT_API_URL expects the run in the
    server's records; the message says how to get either that or a local render."""

    http_status = 503
    code = "orchestrator_unavailable"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so every `except
    KeyboardInterrupt` and `finally` on the way out treats both alike (the audit says "interrupted").

    Raised by the CLI's handler (`cli/main.py`), and by `render_on_server` for Prefect's own
    `TerminationSignal` (Prefect swaps in its SIGTERM handler while a flow runs). Here, not in `cli`,
    so the flow layer can raise it."""
