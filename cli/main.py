"""`dhf`: parse the command line, load the settings, run the command, map errors to exit codes.

Every user-facing failure ends as one line `dhf: error: <problem>; <fix>` and the error's own exit
code (2 for a refused request, 4 for a quality failure; see `config.errors`); no partial output is
left behind (stages write to temp files and rename on success).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli import api, audit, avatar, batch, evaluate, models, pool, render, verify
from config import load_settings
from config.errors import EXIT_USER_ERROR, DhfError
from flows.prefect_env import apply_offline_defaults

COMMAND_GROUPS = (render, batch, avatar, audit, evaluate, verify, models, pool, api)
EXIT_INTERRUPTED = 130
ENOSPC = 28


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dhf", description="Digital Human Factory: text → labeled talking-head MP4")
    parser.add_argument("--config", type=Path, help="YAML file overriding config/default.yaml")
    # `--config` is accepted after the command too (`dhf render ... --config my.yaml`), as README shows.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="YAML file overriding the defaults")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Command modules import Prefect only inside their handlers, so this still comes first.
    apply_offline_defaults()
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return args.handler(args, settings)
    except DhfError as exc:
        print(f"dhf: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dhf: interrupted; nothing was published (re-run to resume from the cached stages)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        hint = "free disk space and re-run" if exc.errno == ENOSPC else "check the path and permissions"
        print(f"dhf: error: {exc.strerror or exc} ({exc.filename or ''}); {hint}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
