"""`python -m flows.server [options of prefect server start]`: Prefect's server, offline-safe.

Why a wrapper and not only a README line: a bare `prefect server start` sends telemetry (offline it
logs "Failed to send telemetry" every 10 minutes), and on any port but 4200 its UI cannot find its
API unless PREFECT_UI_API_URL is set by hand. This starts exactly `prefect server start` with the
options given, in the environment `flows.prefect_env.server_environment` makes for its host and
port (values already set in the environment win). `flows.local_cluster` starts its servers the same
way. The options are passed through untouched; only `--host` and `--port` are read (no argument
parser: only cli/ parses command lines).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from flows.prefect_env import server_environment

DEFAULT_HOST = "127.0.0.1"  # Prefect's own defaults
DEFAULT_PORT = 4200


def option(arguments: Sequence[str], name: str) -> str | None:
    """The value of `name` in `arguments` (`--port 4300` or `--port=4300`), the last one winning as in
    Prefect's own parser; None when absent."""
    value = None
    for index, argument in enumerate(arguments):
        if argument == name and index + 1 < len(arguments):
            value = arguments[index + 1]
        elif argument.startswith(f"{name}="):
            value = argument.split("=", 1)[1]
    return value


def server_command(arguments: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "prefect", "server", "start", *arguments]


def server_setup(
    arguments: Sequence[str], environment: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a server started with `arguments`; its host and port come from
    them, else from Prefect's settings in the environment, else Prefect's defaults."""
    env = os.environ if environment is None else environment
    host = option(arguments, "--host") or env.get("PREFECT_SERVER_API_HOST") or DEFAULT_HOST
    port = int(option(arguments, "--port") or env.get("PREFECT_SERVER_API_PORT") or DEFAULT_PORT)
    return server_command(arguments), server_environment(host, port, env)


def main(arguments: Sequence[str] | None = None) -> None:
    command, env = server_setup(sys.argv[1:] if arguments is None else arguments)
    print(f"Prefect UI API: {env['PREFECT_UI_API_URL']} (telemetry off)", file=sys.stderr, flush=True)
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
