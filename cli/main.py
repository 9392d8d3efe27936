"""`dhf`: parse the command line, load the settings, run the command, map errors to exit codes.

Every user-facing failure ends as one line `dhf: error: <problem>; <fix>` and the error's own exit
code (2 for a refused request, 4 for a quality failure; see `config.errors`); no partial output is
left behind (stages write to temp files and rename on success).

Signals: SIGINT (Ctrl-C) exits 130 and SIGTERM (`kill`, systemd, a container stop) exits 143, both
by the same path: a KeyboardInterrupt unwinds the command, so the render's audit entry is written
("interrupted"), staged files are removed, cached stages stay, and exit handlers run (they stop a
temporary Prefect server that a batch started). Without the handler, SIGTERM ended the process on
the spot: no audit entry, and an orphaned server after every kill.

A closed stdout (`dhf audit list | head -1`) ends the command quietly with status 0, like other Unix
tools (Python's "Note on SIGPIPE"): the reader has all it wanted, so it is not an error to report.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import select
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from cli import api, audit, avatar, batch, catalog, evaluate, evaluate_avatar, models, pool, render, review, verify
from cli.logs import add_logging_options, configure_logging
from config import load_settings
from config.errors import EXIT_USER_ERROR, DhfError
from flows.errors import Terminated
from flows.prefect_env import apply_offline_defaults, prefect_home

COMMAND_GROUPS = (render, batch, review, avatar, audit, evaluate, evaluate_avatar, verify, models, pool, api, catalog)
DISTRIBUTION = "digital-human-factory"
log = logging.getLogger("dhf.cli")
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
INTERRUPTED = "nothing half-written was published (re-run to resume from the cached stages)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dhf", description="Digital Human Factory: text → labeled talking-head MP4")
    parser.add_argument("--version", action="version", version=f"dhf {dhf_version()}", help="print the version")
    parser.add_argument("--config", type=Path, help="YAML file overriding config/default.yaml")
    add_logging_options(parser)
    # `--config` is accepted after the command too (`dhf render ... --config my.yaml`), as README shows.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="YAML file overriding the defaults")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_parsers(sub, common)
    _complete_help(parser)
    return parser


def dhf_version() -> str:
    """The installed distribution's version (pyproject.toml), or "unknown" when run from a bare checkout."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def _complete_help(parser: argparse.ArgumentParser) -> None:
    """Every (sub)command's `--help` opens with what it does (its one-line help as description), and
    takes `--config`, `-v` and `--log-level` after the command at any depth (`dhf api-key create
    --config my.yaml ...`)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, child in action.choices.items():
            if child.description is None and helps.get(name):
                # a help string is %-formatted by argparse, a description is not: "20 %%" must become "20 %"
                words = helps[name].replace("%%", "%")
                child.description = words[:1].upper() + words[1:] + "."
            if "--config" not in child._option_string_actions:
                child.add_argument(
                    "--config", type=Path, default=argparse.SUPPRESS, help="YAML file overriding the defaults"
                )
            if "--log-level" not in child._option_string_actions:
                add_logging_options(child, suppress=True)
            _complete_help(child)


def _terminate(signum: int, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated("SIGTERM")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `Terminated` while the command runs; the previous handler is restored after
    (so `main()` called from Python leaves its caller's signal handling as it was)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    # Command modules import Prefect only inside their handlers, so this still comes first.
    apply_offline_defaults()
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.log_level)
    log.info("dhf %s: %s (Python %s)", dhf_version(), args.command, sys.version.split()[0])
    try:
        with sigterm_as_interrupt():
            settings = load_settings(args.config)
            code = args.handler(args, settings)
            sys.stdout.flush()  # here, not at exit: a reader that went away is seen by the handlers below
            return code
    except DhfError as exc:
        print(f"dhf: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print(f"dhf: terminated (SIGTERM); {INTERRUPTED}", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"dhf: interrupted; {INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if stdout_closed(exc):
            return quiet_exit()
        line = one_line(exc)
        if line is None:
            raise  # a bug: the traceback is what a developer needs
        print(f"dhf: error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR


def stdout_closed(exc: BaseException) -> bool:
    """Whether `exc` is a broken pipe on stdout (its reader exited), not on some other pipe or socket
    (a Prefect server gone mid-request is an error to report). A pipe whose reading end is closed
    polls as POLLERR on its writing end."""
    if not any(isinstance(item, BrokenPipeError) for item in _chain(exc)):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):  # stdout already closed or replaced by an object without a file
        return False


def quiet_exit() -> int:
    """Status 0 with nothing printed: stdout goes to /dev/null so that the interpreter's final flush of
    what is still buffered does not fail again ("Exception ignored ... BrokenPipeError", status 120)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0


def one_line(exc: BaseException) -> str | None:
    """The one-line message for a failure of the machine rather than the request: disk full (here
    or inside Prefect's database), another OS error, an orchestrator that stopped answering. None
    for anything else."""
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, OSError) and item.errno in DISK_FULL:
            where = f" writing {item.filename}" if item.filename else ""
            return f"the disk is full{where} ({item.strerror}); free disk space (df -h) and re-run"
    for item in chain:  # SQLite (Prefect's database) says it in words, with no errno
        if "database or disk is full" in str(item) or "No space left on device" in str(item):
            return f"the disk is full ({str(item).splitlines()[0][:200]}); free disk space (df -h) and re-run"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}; check the path and permissions"
    return _orchestrator_line(chain)


def _orchestrator_line(chain: list[BaseException]) -> str | None:
    import httpx  # already imported by Prefect whenever it could be the cause

    words = ("Failed to reach API", "ephemeral Prefect API server")
    for item in chain:
        if isinstance(item, httpx.HTTPError) or any(w in str(item) for w in words):
            url = os.environ.get("PREFECT_API_URL")
            if url:
                return (
                    f"the Prefect server at PREFECT_API_URL={url} failed ({type(item).__name__}); check it "
                    "(`prefect server start`) or unset PREFECT_API_URL, and re-run"
                )
            return (
                f"Prefect's temporary server failed ({str(item).splitlines()[0][:120]}); check free space and "
                f"permissions under PREFECT_HOME={prefect_home()}, or start a server and set PREFECT_API_URL"
            )
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, innermost last (bounded: chains never need more)."""
    chain = [exc]
    while len(chain) < 20:
        inner = chain[-1].__cause__ or chain[-1].__context__
        if inner is None or inner in chain:
            break
        chain.append(inner)
    return chain


if __name__ == "__main__":
    sys.exit(main())
