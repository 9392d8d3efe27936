"""Orchestration, CLI and audit log.

Prefect is configured here, before any submodule imports it: the factory is offline, so Prefect's
telemetry is switched off (it would try the network), and its own log lines are quiet by default
because the CLI reports problems in one line. Both can still be overridden from the environment.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
