"""`dhf api`: serve the app with uvicorn (one process: the job runner lives in it).

Why one logging configuration for uvicorn and the access log: `--log-level` must set both (uvicorn's
start-up and error lines, and `dhf.api.access`), and both go to stderr through the same handler, so
a log file gets each line once.
"""

from __future__ import annotations

import copy
from typing import Literal

import uvicorn

from api.access_log import ACCESS_LOGGER
from api.app import create_app
from config import Settings
from flows.prefect_env import apply_offline_defaults

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error", "critical")


def log_config(level: LogLevel) -> dict:
    """uvicorn's logging configuration plus the dhf API's loggers at `level` (access lines are INFO)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"][ACCESS_LOGGER.rsplit(".", 1)[0]] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def server_config(settings: Settings, host: str, port: int, log_level: LogLevel = "info") -> uvicorn.Config:
    # access_log=False: uvicorn's own access line would repeat ours without the request and key ids
    return uvicorn.Config(
        create_app(settings), host=host, port=port, log_level=log_level, log_config=log_config(log_level),
        access_log=False,
    )  # fmt: skip


def serve(settings: Settings, host: str, port: int, log_level: LogLevel = "info") -> None:
    apply_offline_defaults()  # batches run Prefect flows in this process
    uvicorn.Server(server_config(settings, host, port, log_level)).run()
