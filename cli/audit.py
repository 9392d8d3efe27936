"""`dhf audit list|show|verify|export`: the tamper-evident log of every render attempt."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from cli.output import add_json_flag, print_json
from config import Settings
from config.errors import EXIT_VERIFICATION_FAILED
from config.files import atomic_path
from governance.audit import AuditLog, entries_text
from governance.free_text import printable
from governance.trust import verify_anchored


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser("audit", parents=[common], help="the tamper-evident log of every render attempt")
    audit.set_defaults(handler=run_audit)
    actions = audit.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="entries, oldest first")
    listing.add_argument("--since", type=dt.date.fromisoformat, help="YYYY-MM-DD (inclusive)")
    listing.add_argument("--until", type=dt.date.fromisoformat, help="YYYY-MM-DD (exclusive)")
    add_json_flag(listing, "the entries in full (the shape of `export --json`)")
    show = actions.add_parser("show", help="one entry in full")
    show.add_argument("entry_id", type=int, help="the entry number (`dhf audit list`)")
    actions.add_parser(
        "verify",
        help="check the hash chain, its witnesses and every file naming an entry (reviews, library); names the "
        "first edited, deleted, reordered or missing entry",
    )
    export = actions.add_parser("export", help="all entries for auditors")
    kind = export.add_mutually_exclusive_group()
    kind.add_argument("--csv", action="store_true", help="CSV (default)")
    kind.add_argument("--json", action="store_true", help="JSON array")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")


def run_audit(args: argparse.Namespace, settings: Settings) -> int:
    log = AuditLog.from_settings(settings)
    if args.action == "list":
        if args.json:
            print_json([entry.as_dict() for entry in log.entries(since=args.since, until=args.until)])
            return 0
        for entry in log.entries(since=args.since, until=args.until):
            record = entry.record
            avatar = f"{record.avatar_id}@v{record.avatar_version}" if record.avatar_version else record.avatar_id
            what = record.output if record.outcome == "success" else record.detail
            fields = (entry.id, entry.time, record.user, record.outcome, avatar, what)
            print("\t".join(printable(field) for field in fields))  # tabs and newlines escaped
        return 0
    if args.action == "show":
        print(json.dumps(log.get(args.entry_id).as_dict(), ensure_ascii=False, indent=2))
        return 0
    if args.action == "verify":
        result, _entries = verify_anchored(settings)
        if result.ok:
            witnesses = ", ".join(str(path) for path in log.witnesses)
            print(
                f"audit log intact: {entries_text(result.checked)}, hash chain, witnesses ({witnesses}), "
                f"review records and library verified ({settings.paths.audit_db})"
            )
            return 0
        print(f"dhf: error: audit log tampered: {result.reason}", file=sys.stderr)
        return EXIT_VERIFICATION_FAILED
    if args.action == "export":
        if not args.output:
            log.export_json(sys.stdout) if args.json else log.export_csv(sys.stdout)
            return 0
        with atomic_path(args.output) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
            count = log.export_json(handle) if args.json else log.export_csv(handle)
        print(f"exported {count} entries to {args.output}")
        return 0
    raise AssertionError(f"unknown audit action {args.action}")  # argparse only accepts the actions above
