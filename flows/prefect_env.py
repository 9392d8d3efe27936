"""Prefect's settings for an offline factory, applied by the process entry points.

Why not on import: importing a module must not change the process's environment. The CLI, the API
server and the render workers call `apply_offline_defaults()` first thing, before anything imports
Prefect (Prefect reads its settings when it is imported). A Python program that drives the flows
itself does the same, or sets these variables in its own environment.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # telemetry would try the network
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "CRITICAL",  # the CLI reports problems in one line of its own
}


def apply_offline_defaults(environment: MutableMapping[str, str] | None = None) -> None:
    """Set each default unless the environment already chooses a value (so users can still override)."""
    target = os.environ if environment is None else environment
    for name, value in OFFLINE_DEFAULTS.items():
        target.setdefault(name, value)
