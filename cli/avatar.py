"""`dhf avatar add|list|show|versions|rollback|revoke`: the avatar library on the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from functools import partial
from pathlib import Path

from avatars.enrollment import enroll
from avatars.errors import AvatarError, LicenseError
from avatars.library import Avatar, AvatarLibrary
from cli.output import add_json_flag, print_json
from config import Settings
from config.errors import DhfError
from governance.audit import AuditLog
from governance.free_text import check_free_text
from governance.library_record import recorded


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    avatar = sub.add_parser(
        "avatar", parents=[common], help="avatar library: enroll, inspect, version, roll back, revoke"
    )
    avatar.set_defaults(handler=run_avatar)
    actions = avatar.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="enroll a photo (new avatar, or a new version of an existing one)")
    add.add_argument("photo", type=Path, nargs="?", help="frontal photo (omit to keep the current one)")
    add.add_argument("--id", dest="avatar_id", required=True, help="avatar id: lowercase letters, digits, - or _")
    add.add_argument("--license", type=Path, required=True, help="license.yaml with its consent document beside it")
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--cutout", type=Path, help="also write the person cut-out (for scenes) to this PNG, to check it")
    cutout = actions.add_parser("cutout", help="the person cut out of the photo (scene backgrounds), as a PNG to check")
    cutout.add_argument("avatar_id", help="avatar id (see `dhf avatar list`)")
    cutout.add_argument("-o", "--output", type=Path, required=True, help="PNG: photo | mask | person on the background")
    cutout.add_argument("--scene", help="show the person on this scene's background (default: grey)")
    add.add_argument(
        "--speaking",
        action="store_true",
        help="the file is a 60-180 s recording of the person reading an enrollment script: a personal avatar "
        "with its own mouths (README: Personal avatars)",
    )
    add.add_argument(
        "--skip-evaluation",
        action="store_true",
        help="with --speaking: do not score the new avatar on its held-out footage now (`dhf evaluate-avatar` later)",
    )
    listing = actions.add_parser("list", help="all avatars with version and authorization status")
    add_json_flag(listing, "the avatars")
    show = actions.add_parser("show", help="one avatar: version, license, enrollment checks")
    show.add_argument("avatar_id", help="the avatar id (`dhf avatar list`)")
    show.add_argument("--version", type=int, help="an older version (default: current)")
    add_json_flag(show, "the avatar, its licence and enrollment checks")
    versions = actions.add_parser("versions", help="every version of an avatar")
    versions.add_argument("avatar_id", help="the avatar id (`dhf avatar list`)")
    add_json_flag(versions, "the versions")
    rollback = actions.add_parser("rollback", help="make an older version current")
    rollback.add_argument("avatar_id", help="the avatar id (`dhf avatar list`)")
    rollback.add_argument("--to", dest="to_version", type=int, required=True, help="the version to make current again")
    revoke = actions.add_parser("revoke", help="withdraw authorization: no version of this avatar renders again")
    revoke.add_argument("avatar_id", help="the avatar id (`dhf avatar list`)")
    revoke.add_argument("--reason", default="", help="why (kept in the library and shown by `show`)")


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


def _row(avatar: Avatar) -> dict:
    """`dhf avatar list --json` (README: Machine-readable output): `status` is the line `list` prints,
    `authorized` whether a render may use the avatar today (a licence still needs the language,
    channel and purpose)."""
    status = _status(avatar)
    return {
        "id": avatar.avatar_id,
        "version": avatar.version,
        "name": avatar.name,
        "authorized": status.startswith("authorized"),
        "status": status,
        "bundled": avatar.bundled,
    }


def _details(avatar: Avatar) -> dict:
    """`dhf avatar show --json`: what `show` prints, as fields (README: Machine-readable output)."""
    lic = avatar.license()
    checks = avatar.folder / "checks.json"
    rev = avatar.revocation
    return {
        **_row(avatar),
        "photo": str(avatar.photo),
        "photo_sha256": avatar.photo_sha256(),
        "license": {
            "id": lic.license_id, "holder": lic.holder, "granted_by": lic.granted_by,
            "valid_from": lic.valid_from.isoformat(), "valid_until": lic.valid_until.isoformat(),
            "languages": list(lic.languages), "channels": list(lic.channels), "purposes": list(lic.purposes),
            "consent_document": lic.consent_document.name, "consent_sha256": lic.consent_sha256,
        },
        "created": avatar.created or None,
        "created_by": avatar.created_by or None,
        "change": avatar.change or None,
        "enrollment_checks": json.loads(checks.read_text(encoding="utf-8")) if checks.is_file() else None,
        "revocation": None if rev is None else
        {"through_version": rev.through_version, "time": rev.time, "by": rev.by, "reason": rev.reason},
    }  # fmt: skip


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
        f"scope: languages {', '.join(lic.languages)}; channels {', '.join(lic.channels)}; "
        f"purposes {', '.join(lic.purposes)}",
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


def _add(library: AvatarLibrary, args: argparse.Namespace, settings: Settings, user: str):
    if args.speaking:
        from avatars.speaking import enroll_speaking

        if args.photo is None:
            raise AvatarError("--speaking needs the recording: dhf avatar add REC.mp4 --id ID --license L --speaking")
        return enroll_speaking(library, args.avatar_id, args.license, settings, user, args.photo, name=args.name)
    return enroll(library, args.avatar_id, args.license, settings, user, photo=args.photo, name=args.name)


def _show_evaluation(avatar: Avatar, settings: Settings) -> None:
    """A personal avatar's quality is its held-out score: shown at enrollment, so a poor recording
    is noticed before anyone renders with it (about a third of the recording's length to compute)."""
    from cli.evaluate_avatar import print_evaluation
    from pipeline.avatar_evaluation import evaluate_avatar  # loads the face models: only here

    print("scoring the mouths on the recording's held-out last 20 % (skip with --skip-evaluation) ...", flush=True)
    try:
        result = evaluate_avatar(avatar, settings)
    except DhfError as exc:  # the avatar is enrolled all the same: the score is information, not a check
        print(f"dhf: warning: could not score {avatar.avatar_id} v{avatar.version} ({exc}); it is enrolled; "
              f"try `dhf evaluate-avatar {avatar.avatar_id}` later", file=sys.stderr)  # fmt: skip
        return
    print_evaluation(avatar, result)
    if result.bank.ssim <= result.painted.ssim:
        print("dhf: warning: the mouth bank scores no better than the painted mouth; re-record following "
              "docs/recording-guide.md (steady light, frontal, every line of the script)", file=sys.stderr)  # fmt: skip


def run_avatar(args: argparse.Namespace, settings: Settings) -> int:
    library = AvatarLibrary.from_settings(settings.paths)
    user = getpass.getuser()
    log = AuditLog.from_settings(settings)
    if args.action == "add":
        result = recorded(
            log,
            "avatar.add",
            user,
            args.avatar_id,
            lambda: _add(library, args, settings, user),
            lambda done: done.avatar,
        )
        for warning in result.warnings:
            print(f"dhf: warning: {warning}", file=sys.stderr)
        print(f"enrolled {result.avatar.avatar_id} v{result.avatar.version} ({result.avatar.change})")
        if args.speaking and not args.skip_evaluation:
            _show_evaluation(result.avatar, settings)
        if args.cutout is not None:
            from pipeline.cutout import write_cutout  # the engine and scipy: only for this command

            written = write_cutout(result.avatar, settings, args.cutout)
            print(f"person cut-out for scenes: {written} (check the hair and the edges)")
        return 0
    if args.action == "cutout":
        from fusion.processors.scene_layout import SceneError  # the engine and scipy: only for this command
        from pipeline.cutout import write_cutout

        if args.scene is not None and args.scene not in settings.scenes:
            raise SceneError(f"unknown scene '{args.scene}'; configured: {', '.join(sorted(settings.scenes))}")
        avatar = library.get(args.avatar_id)
        print(f"person cut-out: {write_cutout(avatar, settings, args.output, args.scene)} (photo | mask | cut out)")
        return 0
    if args.action == "list":
        avatars = [library.get(avatar_id) for avatar_id in library.ids()]
        if args.json:
            print_json([_row(avatar) for avatar in avatars])
            return 0
        for avatar in avatars:
            print(f"{avatar.avatar_id}\tv{avatar.version}\t{_status(avatar)}\t{avatar.name}")
        return 0
    if args.action == "show":
        avatar = library.get(args.avatar_id, args.version)
        print_json(_details(avatar)) if args.json else print(_describe(avatar))
        return 0
    if args.action == "versions":
        current = library.get(args.avatar_id).version
        if args.json:
            print_json([{"version": avatar.version, "current": avatar.version == current, "created": avatar.created,
                         "created_by": avatar.created_by, "change": avatar.change}
                        for avatar in library.versions(args.avatar_id)])  # fmt: skip
            return 0
        for avatar in library.versions(args.avatar_id):
            marker = "*" if avatar.version == current else " "
            print(f"{marker} v{avatar.version}\t{avatar.created}\t{avatar.created_by}\t{avatar.change}")
        return 0
    if args.action == "rollback":
        change = partial(library.rollback, args.avatar_id, args.to_version)
        avatar = recorded(log, "avatar.rollback", user, args.avatar_id, change, lambda done: done)
        print(f"{avatar.avatar_id}: current version is now v{avatar.version}")
        return 0
    if args.action == "revoke":
        reason = check_free_text(args.reason, "the revocation reason")
        change = partial(library.revoke, args.avatar_id, user, reason)
        avatar = recorded(log, "avatar.revoke", user, args.avatar_id, change, lambda done: done)
        print(f"{avatar.avatar_id}: revoked (versions 1..{avatar.version} can no longer be rendered)")
        return 0
    raise AvatarError(f"unknown avatar action {args.action}")
