"""`dhf verify VIDEO [--json]`: check a video's AI marks (label, metadata, watermark, C2PA)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXIT_MARKS_INVALID = 3  # like `dhf audit verify`: a verification that found a problem


def add_verify_parser(sub) -> None:
    verify = sub.add_parser("verify", help="check a video's AI marks: visible label, metadata, watermark, C2PA")
    verify.add_argument("video", type=Path)
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")


def run_verify(args: argparse.Namespace, settings) -> int:
    from flows.verify import verify_video

    report = verify_video(args.video, settings)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"{args.video}: {'all marks valid' if report.passed else 'MARKS MISSING OR INVALID'}")
        for check in report.checks:
            print(f"  {check.mark:<14} {check.status:<8} {check.detail}")
    return 0 if report.passed else EXIT_MARKS_INVALID
