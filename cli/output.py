"""`--json`: one JSON document on stdout per command, so `dhf ... --json | python -m json.tool` (or jq)
always parses. Human lines that a JSON run still prints (progress, per-video lines) go to stderr.

The documents' fields are a stable interface (README "Machine-readable output"): fields may be added,
none renamed or removed without a note there.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON (README: Machine-readable output)")


def print_json(document: Any) -> None:
    """Indented, UTF-8 as is (names in Chinese stay readable); paths and dates as strings."""
    print(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def human_stream(as_json: bool):
    """Where a command's human lines go: stdout normally, stderr when stdout carries JSON."""
    return sys.stderr if as_json else sys.stdout


def is_terminal(stream) -> bool:
    """Whether progress bars on `stream` would be seen moving (not a file, pipe or closed stream)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
