"""`dhf evaluate VIDEO [--avatar ID] [--json]`: the quality monitors on any MP4, ours or not."""

from __future__ import annotations

import argparse
from pathlib import Path

from avatars.library import AvatarLibrary
from config import Settings
from quality.errors import QualityGateError
from quality.evaluate import evaluate_against_avatar
from quality.scores import LipSyncScores, QualityReport


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    evaluate = sub.add_parser(
        "evaluate", parents=[common], help="score a video: lip-sync, identity, pose, flicker, colour"
    )
    evaluate.set_defaults(handler=run_evaluate)
    evaluate.add_argument("video", type=Path, help="the MP4 to measure")
    evaluate.add_argument("--avatar", help="compare identity and skin tone with this avatar")
    evaluate.add_argument("--json", action="store_true", help="print the full report as JSON")


def _lipsync_line(lipsync: LipSyncScores) -> str:
    if lipsync.correlation is None or lipsync.lag_ms is None:
        return f"  lip-sync: {lipsync.note or 'not measured'}"
    line = f"  lip-sync: correlation {lipsync.correlation:.2f} at lag {lipsync.lag_ms:.0f} ms"
    if lipsync.closure_rate is not None:
        line += f", lips closed in {lipsync.closure_rate:.0%} of P/B/M phones"
    return line


def describe(name: str, report: QualityReport) -> str:
    lines = [
        f"{name}: {'PASSED' if report.passed else 'FAILED'} ({report.frames} frames at {report.fps:g} fps, "
        f"evaluated in {report.evaluation_seconds:.1f} s)",
        _lipsync_line(report.lipsync),
    ]
    identity = report.identity
    if identity.max_distance is not None:
        lines.append(
            f"  identity: max distance {identity.max_distance:.2f} (mean {identity.mean_distance:.2f}), "
            f"{identity.alarm_frames} of {identity.sampled_frames} sampled frames over the threshold"
        )
    else:
        lines.append("  identity: not checked (give --avatar)")
    pose = report.pose
    lines.append(
        f"  pose: max |yaw| {pose.max_abs_yaw}°, |pitch| {pose.max_abs_pitch}°, |roll| {pose.max_abs_roll}°; "
        f"{pose.gated_frames} frames gated, {pose.frames_without_face} without a face"
    )
    st = report.stability
    lines.append(
        f"  stability: flicker {st.flicker:.2f} (face {st.flicker_face:.2f}, background "
        f"{st.flicker_background:.2f}), landmark jitter {st.landmark_jitter:.4f}"
    )
    color = report.color
    reference = f", vs avatar ΔE {color.reference_delta_e:.1f}" if color.reference_delta_e is not None else ""
    lines.append(f"  colour: drift ΔE {color.drift_delta_e:.1f}{reference}")
    art = report.artifacts
    seam = f"{art.seam:.2f}" if art.seam is not None else "not measured"
    interior = f"{art.interior_black:.0%}" if art.interior_black is not None else "mouth never open"
    chin = f"{art.chin_follows_mouth:.2f}" if art.chin_follows_mouth is not None else "not measured"
    lines.append(
        f"  artifacts: seam {seam}, near-black mouth {interior}, chin follows mouth {chin}, "
        f"{art.blinks} blinks ({art.blinks_per_minute:g}/min)"
    )
    lines += [f"  FAIL: {failure}" for failure in report.failures]
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    avatar = AvatarLibrary.from_settings(settings.paths).get(args.avatar) if args.avatar else None
    report = evaluate_against_avatar(args.video, avatar, settings)
    print(report.model_dump_json(indent=2) if args.json else describe(args.video.name, report))
    if not report.passed:
        raise QualityGateError(f"{args.video.name} fails the quality thresholds: {'; '.join(report.failures)}")
    return 0
