"""`dhf evaluate-avatar ID`: held-out mouth quality of a personal avatar (README: Personal avatars)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from avatars.library import Avatar, AvatarLibrary
from config import Settings

if TYPE_CHECKING:
    from pipeline.held_out import HeldOutEvaluation


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "evaluate-avatar",
        parents=[common],
        help="hold out the last 20 %% of a personal avatar's recording, re-render it, score the mouths",
    )
    parser.add_argument("avatar_id", help="a personal avatar's id (enrolled with --speaking)")
    parser.add_argument("--version", type=int, help="an older version (default: current)")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.set_defaults(handler=run_evaluate_avatar)


def run_evaluate_avatar(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.avatar_evaluation import evaluate_avatar  # loads the face models: only when asked

    avatar = AvatarLibrary.from_settings(settings.paths).get(args.avatar_id, args.version)
    result = evaluate_avatar(avatar, settings)
    if args.json:
        print(json.dumps({"avatar": avatar.avatar_id, "version": avatar.version, **result.as_dict()}, indent=2))
        return 0
    print_evaluation(avatar, result)
    return 0


def print_evaluation(avatar: Avatar, result: HeldOutEvaluation) -> None:
    """The held-out scores as a small table (also shown by `dhf avatar add --speaking`)."""
    print(f"avatar {avatar.avatar_id} v{avatar.version}: {result.frames} held-out frames (last 20 %), "
          f"bank of {result.units} units from the rest")  # fmt: skip
    print(f"{'':16}{'SSIM':>8}{'PSNR dB':>10}{'lip dist (IOD)':>16}")
    for name, scores in (("mouth bank", result.bank), ("painted mouth", result.painted)):
        print(f"{name:16}{scores.ssim:8.3f}{scores.psnr:10.2f}{scores.lip_distance:16.4f}")
    print(f"selection error {result.selection_error:.3f} (p95 {result.selection_error_p95:.3f}), "
          f"mean run {result.mean_run:.1f} frames")  # fmt: skip
    for title, groups in (("by head pose (|yaw|)", result.by_pose), ("by viseme", result.by_viseme)):
        if groups:
            print(f"{title}:{'frames':>9}{'bank SSIM':>11}{'painted':>9}{'bank lip':>10}{'painted':>9}")
            for name, row in groups.items():
                bank, painted = row["mouth_bank"], row["painted_mouth"]
                print(f"  {name:<18}{row['frames']:>9}{bank['ssim']:>11.3f}{painted['ssim']:>9.3f}"
                      f"{bank['lip_distance']:>10.4f}{painted['lip_distance']:>9.4f}")  # fmt: skip
