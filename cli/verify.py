"""`dhf verify VIDEO [--json]`: check a video's AI marks (label, metadata, watermark, C2PA)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from config import Settings
from config.errors import EXIT_VERIFICATION_FAILED
from governance.verify import verify_video


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    verify = sub.add_parser(
        "verify", parents=[common], help="check a video's AI marks: visible label, metadata, watermark, C2PA"
    )
    verify.set_defaults(handler=run_verify)
    verify.add_argument("video", type=Path, help="the MP4 to check (any copy: re-encoded, resized, cropped)")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    report = verify_video(args.video, settings)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"{args.video}: {'all marks valid' if report.passed else 'MARKS MISSING OR INVALID'}")
        for check in report.checks:
            print(f"  {check.mark:<14} {check.status:<8} {check.detail}")
        if report.review:
            print(f"  {'review':<14} {report.review}")
    return 0 if report.passed else EXIT_VERIFICATION_FAILED
