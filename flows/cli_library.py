"""`dhf avatar …` and `dhf audit …`: the avatar library and the audit log on the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path

from avatars.errors import AvatarError, LicenseError
from avatars.library import Avatar, AvatarLibrary
from config.files import atomic_path
from flows.audit import AuditLog


def add_avatar_parser(sub) -> None:
    avatar = sub.add_parser("avatar", help="avatar library: enroll, inspect, version, roll back, revoke")
    actions = avatar.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="enroll a photo (new avatar, or a new version of an existing one)")
    add.add_argument("photo", type=Path, nargs="?", help="frontal photo (omit to keep the current one)")
    add.add_argument("--id", dest="avatar_id", required=True, help="avatar id: lowercase letters, digits, - or _")
    add.add_argument("--license", type=Path, required=True, help="license.yaml with its consent document beside it")
    add.add_argument("--name", default="", help="display name")
    actions.add_parser("list", help="all avatars with version and authorization status")
    show = actions.add_parser("show", help="one avatar: version, license, enrollment checks")
    show.add_argument("avatar_id")
    show.add_argument("--version", type=int, help="an older version (default: current)")
    versions = actions.add_parser("versions", help="every version of an avatar")
    versions.add_argument("avatar_id")
    rollback = actions.add_parser("rollback", help="make an older version current")
    rollback.add_argument("avatar_id")
    rollback.add_argument("--to", dest="to_version", type=int, required=True)
    revoke = actions.add_parser("revoke", help="withdraw authorization: no version of this avatar renders again")
    revoke.add_argument("avatar_id")
    revoke.add_argument("--reason", default="", help="why (kept in the library and shown by `show`)")


def add_audit_parser(sub) -> None:
    audit = sub.add_parser("audit", help="the tamper-evident log of every render attempt")
    actions = audit.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="entries, oldest first")
    listing.add_argument("--since", type=dt.date.fromisoformat, help="YYYY-MM-DD (inclusive)")
    listing.add_argument("--until", type=dt.date.fromisoformat, help="YYYY-MM-DD (exclusive)")
    show = actions.add_parser("show", help="one entry in full")
    show.add_argument("entry_id", type=int)
    actions.add_parser("verify", help="check the hash chain; names the first edited, deleted or reordered entry")
    export = actions.add_parser("export", help="all entries for auditors")
    kind = export.add_mutually_exclusive_group()
    kind.add_argument("--csv", action="store_true", help="CSV (default)")
    kind.add_argument("--json", action="store_true", help="JSON array")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")


def _status(avatar: Avatar) -> str:
    if avatar.revoked:
        return f"REVOKED {avatar.revocation.time[:10]}"
    try:
        lic = avatar.license()
    except LicenseError as exc:
        return f"NO VALID LICENSE ({exc})"
    if lic.revoked:
        return "REVOKED (license)"
    today = dt.date.today()
    if today > lic.valid_until:
        return f"EXPIRED {lic.valid_until}"
    if today < lic.valid_from:
        return f"NOT YET VALID (from {lic.valid_from})"
    return f"authorized until {lic.valid_until}"


def _describe(avatar: Avatar) -> str:
    lic = avatar.license()
    lines = [
        f"id: {avatar.avatar_id}",
        f"version: {avatar.version}{' (bundled)' if avatar.bundled else ''}",
        f"name: {avatar.name}",
        f"status: {_status(avatar)}",
        f"photo: {avatar.photo} (sha256 {avatar.photo_sha256()[:16]}…)",
        f"license: {lic.license_id}, holder {lic.holder}, granted by {lic.granted_by}",
        f"valid: {lic.valid_from} .. {lic.valid_until}",
        f"scope: languages={list(lic.languages)} channels={list(lic.channels)} purposes={list(lic.purposes)}",
        f"consent document: {lic.consent_document.name} (sha256 {lic.consent_sha256[:16]}…)",
    ]
    if avatar.created:
        lines.append(f"created: {avatar.created} by {avatar.created_by} ({avatar.change})")
    checks = avatar.folder / "checks.json"
    if checks.is_file():
        lines.append(f"enrollment checks: {checks.read_text(encoding='utf-8').strip()}")
    if avatar.revocation is not None:
        rev = avatar.revocation
        lines.append(f"revocation: versions <= {rev.through_version} revoked {rev.time} by {rev.by}: {rev.reason}")
    return "\n".join(lines)


def run_avatar(args: argparse.Namespace, settings) -> int:
    library = AvatarLibrary.from_settings(settings.paths)
    user = getpass.getuser()
    if args.action == "add":
        from avatars.enrollment import enroll

        result = enroll(library, args.avatar_id, args.license, settings, user, photo=args.photo, name=args.name)
        for warning in result.warnings:
            print(f"dhf: warning: {warning}", file=sys.stderr)
        print(f"enrolled {result.avatar.avatar_id} v{result.avatar.version} ({result.avatar.change})")
        return 0
    if args.action == "list":
        for avatar_id in library.ids():
            avatar = library.get(avatar_id)
            print(f"{avatar_id}\tv{avatar.version}\t{_status(avatar)}\t{avatar.name}")
        return 0
    if args.action == "show":
        print(_describe(library.get(args.avatar_id, args.version)))
        return 0
    if args.action == "versions":
        current = library.get(args.avatar_id).version
        for avatar in library.versions(args.avatar_id):
            marker = "*" if avatar.version == current else " "
            print(f"{marker} v{avatar.version}\t{avatar.created}\t{avatar.created_by}\t{avatar.change}")
        return 0
    if args.action == "rollback":
        avatar = library.rollback(args.avatar_id, args.to_version)
        print(f"{avatar.avatar_id}: current version is now v{avatar.version}")
        return 0
    if args.action == "revoke":
        avatar = library.revoke(args.avatar_id, user, args.reason)
        print(f"{avatar.avatar_id}: revoked (versions 1..{avatar.version} can no longer be rendered)")
        return 0
    raise AvatarError(f"unknown avatar action {args.action}")


def run_audit(args: argparse.Namespace, settings) -> int:
    log = AuditLog(settings.paths.audit_db)
    if args.action == "list":
        for entry in log.entries(since=args.since, until=args.until):
            record = entry.record
            avatar = f"{record.avatar_id}@v{record.avatar_version}" if record.avatar_version else record.avatar_id
            what = record.output if record.outcome == "success" else record.detail
            print(f"{entry.id}\t{entry.time}\t{record.user}\t{record.outcome}\t{avatar}\t{what}")
        return 0
    if args.action == "show":
        print(json.dumps(log.get(args.entry_id).as_dict(), ensure_ascii=False, indent=2))
        return 0
    if args.action == "verify":
        result = log.verify()
        if result.ok:
            print(f"audit log intact: {result.checked} entries, hash chain verified ({settings.paths.audit_db})")
            return 0
        print(f"dhf: error: audit log tampered: {result.reason}", file=sys.stderr)
        return 3
    if args.action == "export":
        if not args.output:
            log.export_json(sys.stdout) if args.json else log.export_csv(sys.stdout)
            return 0
        with atomic_path(args.output) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
            count = log.export_json(handle) if args.json else log.export_csv(handle)
        print(f"exported {count} entries to {args.output}")
        return 0
    raise AvatarError(f"unknown audit action {args.action}")
