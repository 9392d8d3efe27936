"""`dhf review list|show|approve|reject`: decide the videos held for human review (README: Review
before publishing). Approval publishes the video under its requested name; rejection removes it;
both are audit entries naming the OS user who decided (and the --reviewer name beside it). The user
who requested a video cannot approve it (separation of duties; `governance.break_glass`)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from config import Settings
from pipeline.review import Decider, decide, get_review, list_reviews
from pipeline.review_store import ReviewRecord


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    review = sub.add_parser(
        "review",
        parents=[common],
        help="list, show, approve or reject videos held for human review",
        description="Videos that passed the quality gate wait here when governance.review is required "
        "(settings, the avatar's licence, or the batch script). Approval publishes, rejection removes.",
    )
    review.set_defaults(handler=run_review)
    actions = review.add_subparsers(dest="action", required=True, metavar="{list,show,approve,reject}")
    listing = actions.add_parser("list", parents=[common], help="the reviews waiting for a decision")
    listing.add_argument(
        "--state", default="pending", choices=["pending", "approved", "rejected", "all"],
        help="which reviews to list (default: pending)",
    )  # fmt: skip
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    show = actions.add_parser("show", parents=[common], help="one review: video, thumbnail, quality scores")
    show.add_argument("review_id", help="the id `dhf review list` prints")
    show.add_argument("--json", action="store_true", help="print the record as JSON")
    for name, words in (("approve", "publish the held video under its requested name"),
                        ("reject", "remove the held video; nothing is published")):  # fmt: skip
        action = actions.add_parser(name, parents=[common], help=words)
        action.add_argument("review_id", help="the id `dhf review list` prints")
        action.add_argument(
            "--reviewer",
            default=None,
            help="your name as shown beside the OS user, who is the deciding actor in the audit log",
        )
        action.add_argument("--comment", "-m", default="", help="why (recorded in the audit log)")


def run_review(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "list":
        records = list_reviews(settings, args.state)
        if args.json:
            print(json.dumps([record.model_dump() for record in records], ensure_ascii=False, indent=2))
        elif not records:
            print(f"no {args.state if args.state != 'all' else ''} reviews".replace("  ", " "))
        for record in [] if args.json else records:
            print(_line(record))
        return 0
    if args.action == "show":
        record = get_review(settings, args.review_id)
        print(json.dumps(record.model_dump(), ensure_ascii=False, indent=2) if args.json else _details(record))
        return 0
    # The OS user is the authenticated actor; --reviewer is only a display name recorded beside it.
    decider = Decider(getpass.getuser(), args.reviewer or "")
    record = decide(settings, args.review_id, args.action, decider, args.comment)
    reviewer = decider.shown
    if record.flow_run_id:  # a `dhf render --wait-review` run paused for this review: resume it with the decision
        from flows.review_flow import resume_waiting_run  # imports Prefect: only when a run waits

        warning = resume_waiting_run(record)
        if warning:
            print(warning, file=sys.stderr)
    if record.state == "approved":
        print(f"approved by {reviewer}: published {record.output} (audit entry #{record.audit_entry})")
    else:
        print(f"rejected by {reviewer}: nothing published at {record.output} (audit entry #{record.audit_entry})")
    return 0


def _line(record: ReviewRecord) -> str:
    who = f"  {record.state} by {record.decided_by}" if record.decided_by else f"  until {record.deadline}"
    where = record.batch or record.output
    return f"{record.id}  {record.avatar_id} [{record.language}]  {record.duration_s:.1f} s  {where}{who}"


def _details(record: ReviewRecord) -> str:
    scores = ", ".join(f"{name} {value:g}" for name, value in record.quality.items())
    lines = [
        f"review {record.id}: {record.state}"
        + (f" by {record.decided_by} at {record.decided}" if record.decided else ""),
        f"  publishes   {record.output}",
        f"  video       {record.staged.get('video', '-')}",
        f"  thumbnail   {record.staged.get('thumbnail', '-')}",
        f"  avatar      {record.avatar_id} [{record.language}], {record.frames} frames = {record.duration_s:.1f} s",
        f"  text        {record.text}",
        f"  quality     {'passed' if record.quality_passed else 'FAILED'}: {scores}",
        f"  requested   by {record.requested_by} at {record.created}; decide by {record.deadline}",
    ]
    if record.comment or record.reason:
        lines.append(f"  comment     {record.comment or record.reason}")
    return "\n".join(lines)
