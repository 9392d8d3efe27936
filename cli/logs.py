"""`-v/--log-level`: how much of the factory's own logging reaches stderr.

Quiet by default (warnings and errors only): a render's result is its one line on stdout, and a log
line is for someone who is looking for a cause. `-v` shows INFO, `-vv` DEBUG; `--log-level NAME` says
it exactly and wins over `-v`. Prefect's loggers follow the same level (PREFECT_LOGGING_LEVEL, read when
Prefect is imported, which command handlers do only after this runs).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMAT = "%(levelname)s %(name)s: %(message)s"
HANDLER = "dhf-cli"


def add_logging_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The options on `parser`; `suppress`: not set unless given (a subcommand's copy does not reset
    what the top-level option said, as with `--config`)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="show the factory's log: -v informational lines, -vv debugging lines (on stderr)",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LEVELS,
        default=argparse.SUPPRESS if suppress else None,
        help="log level on stderr (default: warning; wins over -v)",
    )


def log_level(verbose: int, level: str | None) -> int:
    """The logging level the options ask for."""
    if level is not None:  # a subcommand's own --log-level may know more names (uvicorn's "trace": DEBUG here)
        value = logging.getLevelName(level.upper())
        return value if isinstance(value, int) else logging.DEBUG
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def configure_logging(verbose: int, level: str | None) -> int:
    """Route the root logger to stderr at the asked level; returns the level. One handler of ours (by
    name): `main()` called again in one process replaces it instead of printing every line twice, and
    leaves other handlers (pytest's) alone. Prefect follows only when the user asked (its own default
    configuration stays otherwise)."""
    chosen = log_level(verbose, level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(chosen)
    if verbose or level is not None:
        os.environ["PREFECT_LOGGING_LEVEL"] = logging.getLevelName(chosen)
    return chosen
