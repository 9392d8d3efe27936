"""`dhf verify VIDEO [--json]`: a publication gate. Checks a video's AI marks (label, metadata,
watermark, C2PA), the audit log it was rendered under, and its approval where review was required.

Exit codes a pipeline can act on: 0 publishable; 3 marks missing or invalid, or no render entry on
this machine; 5 the audit log fails verification; 6 review required and this file not approved;
7 review rejected or timed out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from config import Settings
from governance.free_text import printable
from governance.verify import verify_video


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    verify = sub.add_parser(
        "verify",
        parents=[common],
        help="publication gate: AI marks (label, metadata, watermark, C2PA), audit log, approval",
        description="Exit codes: 0 publishable, 3 marks missing/invalid or no render entry here, 5 audit log "
        "tampered, 6 review required but this file not approved, 7 review rejected.",
    )
    verify.set_defaults(handler=run_verify)
    verify.add_argument("video", type=Path, help="the MP4 to check (any copy: re-encoded, resized, cropped)")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    report = verify_video(args.video, settings)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"{args.video}: {HEADLINES[report.verdict]}")
        for check in (*report.checks, report.audit):
            print(f"  {check.mark:<14} {check.status:<8} {printable(check.detail)}")
        if report.review:
            print(f"  {'review':<14} {report.review_state:<8} {printable(report.review)}")
    return report.exit_code


HEADLINES = {
    "publishable": "publishable: all marks valid, audit log intact",
    "tampered": "AUDIT LOG TAMPERED: nothing it says about this video counts",
    "rejected": "REJECTED in review: do not publish",
    "unapproved": "NOT APPROVED: review is required and no approval names this file",
    "unmarked": "MARKS MISSING OR INVALID, or no render entry on this machine",
}
