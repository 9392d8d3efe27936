"""Prefect's settings for an offline factory, applied by the process entry points.

Why not on import: importing a module must not change the process's environment. The CLI, the API
server and the render workers call `apply_offline_defaults()` first thing, before anything imports
Prefect (Prefect reads its settings when it is imported). A Python program that drives the flows
itself does the same, or sets these variables in its own environment.

Why this module never imports Prefect: `dhf` asks `configured_api_url()` on every render to decide
whether to run the flow at all, and importing Prefect costs ~1 s (issue 16: no start-up tax).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from flows.errors import PrefectUnavailableError

OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # telemetry would try the network
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "CRITICAL",  # the CLI reports problems in one line of its own
    # ... but the runs' own logs (stage timings, quality verdict, why a run failed) go to the server, so
    # the UI's Logs tab explains each run; the console handler stays silent, the terminal unchanged.
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    # The temporary server creates and migrates its SQLite database on start; Prefect gives it 20 s,
    # which a loaded 2-core machine exceeded once in the full test suite ("Timed out while attempting
    # to connect to ephemeral Prefect API server"): a batch failed that a second later would have run.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}

# What every `prefect server start` the project starts or documents gets (flows/server.py,
# flows/local_cluster.py, deploy/docker-compose.yml): no telemetry (offline it logged "Failed to send
# telemetry" every 10 minutes). Not OFFLINE_DEFAULTS: those silence the console a server logs to.
SERVER_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}
UNSPECIFIED_HOSTS = {"0.0.0.0", "::", ""}

# A command-line client must give up on a server that stopped answering, not wait Prefect's default
# 60 s × 6 attempts with exponential back-off (QA saw a render hang for 421 s). One retry after
# ~2 s rides out a restart; the worst stall of one call is 8 + 2 + 8 s. Not applied to workers or
# the API server: they are long-running and wait out a busy server.
CLIENT_BOUNDS = {
    "PREFECT_API_REQUEST_TIMEOUT": "8",
    "PREFECT_CLIENT_MAX_RETRIES": "1",
}
HEALTH_TIMEOUT_S = 5.0  # a healthy server answers /health in milliseconds
# Prefect's temporary server keeps its SQLite database in PREFECT_HOME; on a full disk it fails to
# start and the client gives up after ~30 s with a traceback, so check the room first.
MIN_FREE_BYTES = 32 * 1024 * 1024


def apply_offline_defaults(environment: MutableMapping[str, str] | None = None) -> None:
    """Set each default unless the environment already chooses a value (so users can still override)."""
    _set_defaults(OFFLINE_DEFAULTS, environment)


def apply_client_bounds(environment: MutableMapping[str, str] | None = None) -> None:
    """Bounded API timeouts for a short-lived client (`dhf render`, `dhf batch`), before Prefect is
    imported; a value the user set wins."""
    _set_defaults(CLIENT_BOUNDS, environment)


def server_environment(host: str, port: int, environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for `prefect server start --host host --port port`: SERVER_DEFAULTS, and
    PREFECT_UI_API_URL from that port. Why: Prefect's UI asks for the API URL its settings derive
    from PREFECT_API_URL or PREFECT_SERVER_API_PORT, never from `--port`, so a server on another
    port served a UI that said "Can't connect to Server API at …:4200/api". A value set wins (a
    server behind a proxy, or one browsed from other machines, names its public URL)."""
    env = dict(os.environ if environment is None else environment)
    _set_defaults(SERVER_DEFAULTS, env)
    browsed = "127.0.0.1" if host in UNSPECIFIED_HOSTS else host  # 0.0.0.0 listens everywhere; a browser needs a name
    if ":" in browsed:  # an IPv6 address in a URL
        browsed = f"[{browsed}]"
    env.setdefault("PREFECT_UI_API_URL", f"http://{browsed}:{port}/api")
    return env


def _set_defaults(defaults: Mapping[str, str], environment: MutableMapping[str, str] | None) -> None:
    target = os.environ if environment is None else environment
    for name, value in defaults.items():
        target.setdefault(name, value)


def configured_api_url(environment: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """The Prefect server this process would talk to, or None for none (Prefect would start a
    temporary one). Reads PREFECT_API_URL; only when a Prefect profile or settings file exists that
    could set it instead does it ask Prefect itself (and pay for importing it)."""
    env = os.environ if environment is None else environment
    if "PREFECT_API_URL" in env:
        return env["PREFECT_API_URL"].strip() or None
    if not _other_settings_sources(env, Path.cwd() if cwd is None else cwd):
        return None
    from prefect.settings import get_current_settings  # a profile may name a server

    return get_current_settings().api.url or None


def _other_settings_sources(env: Mapping[str, str], cwd: Path) -> bool:
    """Whether anything besides the environment could configure Prefect (see Prefect's
    settings/sources.py: profiles, .env, prefect.toml, pyproject [tool.prefect])."""
    if env.get("PREFECT_PROFILE") or env.get("PREFECT_PROFILES_PATH"):
        return True
    home = prefect_home(env)
    if (home / "profiles.toml").is_file() or (cwd / ".env").is_file() or (cwd / "prefect.toml").is_file():
        return True
    pyproject = cwd / "pyproject.toml"
    try:
        return "[tool.prefect" in pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def prefect_home(environment: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environment is None else environment
    return Path(env["PREFECT_HOME"]).expanduser() if env.get("PREFECT_HOME") else Path.home() / ".prefect"


def temporary_records(environment: Mapping[str, str] | None = None) -> str:
    """Where Prefect's temporary server (a server-less `dhf batch`) keeps its records: they outlive
    the process, in the database a `prefect server start` with the same PREFECT_HOME also uses, so
    its UI shows them later. Kept rather than thrown away with the process: a fresh database costs
    its migrations on every batch (docs/decisions.md). A database URL of one's own is named by its
    setting, never printed (it may hold a password)."""
    env = os.environ if environment is None else environment
    for name in ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
        url = env.get(name, "").strip()
        if url:
            sqlite = url.split("///", 1)[1] if url.startswith("sqlite") and "///" in url else ""
            return sqlite if sqlite and sqlite != ":memory:" else f"the database of {name}"
    return str(prefect_home(env) / "prefect.db")


def require_local_room(environment: Mapping[str, str] | None = None, minimum: int = MIN_FREE_BYTES) -> None:
    """One line naming PREFECT_HOME if the temporary server's database has no room to start."""
    home = prefect_home(environment)
    existing = next((p for p in (home, *home.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    if free < minimum:
        raise PrefectUnavailableError(
            f"the disk is full under PREFECT_HOME={home} ({free // 1024} KiB free; Prefect's temporary server "
            f"needs {minimum // 2**20} MiB for its database); free disk space or set PREFECT_HOME to another folder"
        )


def require_reachable(url: str, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Fail in `timeout` seconds with one line if the server at `url` does not answer its health
    check, instead of letting Prefect's client retry for minutes. Closed ports fail at once."""
    import httpx  # a Prefect dependency; imported only when a server is configured

    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout)
        response.raise_for_status()
    except httpx.TimeoutException:
        raise unavailable(url, f"did not answer within {timeout:g} s") from None
    except httpx.HTTPStatusError as exc:
        raise unavailable(url, f"answered its health check with HTTP {exc.response.status_code}") from None
    except (httpx.HTTPError, ValueError) as exc:  # refused, unresolvable, not a URL
        raise unavailable(url, f"cannot be reached ({_reason(exc)})") from None


def unavailable(url: str, problem: str) -> PrefectUnavailableError:
    return PrefectUnavailableError(
        f"the Prefect server at PREFECT_API_URL={url} {problem}; start it (`prefect server start`) "
        "or unset PREFECT_API_URL to render in this process without a server"
    )


def _reason(exc: BaseException) -> str:
    """The innermost cause's message, on one line (httpx wraps the socket error)."""
    for _ in range(10):  # bounded: a chain never needs more, and must not loop
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
