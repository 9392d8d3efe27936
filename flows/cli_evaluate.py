"""`dhf evaluate VIDEO [--avatar ID] [--json]`: the quality monitors on any MP4, ours or not."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avatars.library import AvatarLibrary
from flows.quality_stage import QualityGateError, evaluate_output


def add_evaluate_parser(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="score a video: lip-sync, identity, pose, flicker, colour")
    evaluate.add_argument("video", type=Path)
    evaluate.add_argument("--avatar", help="compare identity and skin tone with this avatar")
    evaluate.add_argument("--json", action="store_true", help="print the full report as JSON")


def _lipsync_line(lipsync: dict) -> str:
    if lipsync.get("correlation") is None:
        return f"  lip-sync: {lipsync.get('note', 'not measured')}"
    line = f"  lip-sync: correlation {lipsync['correlation']:.2f} at lag {lipsync['lag_ms']:.0f} ms"
    if "closure_rate" in lipsync:
        line += f", lips closed in {lipsync['closure_rate']:.0%} of P/B/M phones"
    return line


def describe(name: str, report) -> str:
    q = report.as_dict()
    lines = [
        f"{name}: {'PASSED' if report.passed else 'FAILED'} ({report.frames} frames at {report.fps:g} fps, "
        f"evaluated in {report.seconds:.1f} s)",
        _lipsync_line(q["lipsync"]),
    ]
    identity = q["identity"]
    if identity.get("max_distance") is not None:
        lines.append(
            f"  identity: max distance {identity['max_distance']:.2f} (mean {identity['mean_distance']:.2f}), "
            f"{identity['alarm_frames']} of {identity['sampled_frames']} sampled frames over the threshold"
        )
    else:
        lines.append("  identity: not checked (give --avatar)")
    pose = q["pose"]
    lines.append(
        f"  pose: max |yaw| {pose['max_abs_yaw']}°, |pitch| {pose['max_abs_pitch']}°, |roll| {pose['max_abs_roll']}°; "
        f"{pose['gated_frames']} frames gated, {pose['frames_without_face']} without a face"
    )
    st = q["stability"]
    lines.append(
        f"  stability: flicker {st['flicker']:.2f} (face {st['flicker_face']:.2f}, background "
        f"{st['flicker_background']:.2f}), landmark jitter {st['landmark_jitter']:.3f}"
    )
    color = q["color"]
    reference = f", vs avatar ΔE {color['reference_delta_e']:.1f}" if color["reference_delta_e"] is not None else ""
    lines.append(f"  colour: drift ΔE {color['drift_delta_e']:.1f}{reference}")
    lines += [f"  FAIL: {failure}" for failure in report.failures]
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace, settings) -> int:
    avatar = AvatarLibrary.from_settings(settings.paths).get(args.avatar) if args.avatar else None
    report = evaluate_output(args.video, avatar, settings)
    print(
        json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if args.json else describe(args.video.name, report)
    )
    if not report.passed:
        raise QualityGateError(f"{args.video.name} fails the quality thresholds: {'; '.join(report.failures)}")
    return 0
