"""Render benchmark: every stage timed, compared with an ffmpeg-only 1080p encode of the same duration.

Ratios, not absolute seconds, are the figures to compare across machines: both sides are measured
in the same run on the same (noisy, shared) machine. Every render is judged by its quality gate,
which observes the frames while they are encoded (quality/inline.py). To show what the gate costs,
each sentence's render stage is run a second time without the monitor ("gate off", for the
measurement only: the product has no such switch). The run uses a fresh DHF home (models linked
from the provisioned one), so speech and driver caches start cold as for new text. Usage:
    .venv/bin/python scripts/bench_render.py [--count 10] [--out bench-out] [--sync]
--sync also re-detects landmarks on every output and reports lip-gap/audio correlation (slow).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config import load_settings
from pipeline import stages
from pipeline.request import RenderRequest, validate_request
from pipeline.run import render_video
from quality.measure import correlation_at_best_lag, measure_video
from vision.analysis import FaceAnalyser
from vision.models import ModelRegistry

SENTENCES = [
    "Welcome to our bank. Today I will explain how a one-year fixed deposit works, what rate you get, and when you can withdraw your money without losing any interest.",
    "Your deposit earns 3.5% per year. Interest is calculated daily and paid at maturity, together with the amount you put in, straight into your current account.",
    "If you need the money early, you can close the deposit at any time, but the interest will then be paid at the lower demand rate for the whole period you held it.",
    "To open a deposit, bring a valid passport or identity card, and your bank card. The whole process takes about ten minutes at the branch, and no appointment is needed.",
    "You can also open a deposit in our mobile app. Choose the term, enter the amount, confirm with your password, and you are done. The app shows the rate before you confirm.",
    "Deposits are protected by the national deposit insurance scheme up to five hundred thousand per person and per bank, including the interest earned so far.",
    "At maturity, the deposit can renew automatically for the same term at the rate that applies on that day, unless you tell us otherwise at least one day before.",
    "Please keep your contact details up to date, so that we can remind you before your deposit matures and explain your options in good time, by message or by phone.",
    "For amounts above one million, please book an appointment with a relationship manager, who can offer you a tailored rate and explain the other savings products we have.",
    "Thank you for watching. If you have more questions, ask our assistant in the app, or call the number shown on the back of your bank card, at any time of the day.",
]


def ffmpeg_reference(duration: float, width: int, height: int, fps: int, out: Path) -> float:
    command = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}",
        "-t",
        f"{duration:.3f}",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        str(out),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def render_without_gate(request: RenderRequest, settings) -> float:
    """Seconds of the render stage alone, without the gate's monitor (stages cached by the real render)."""
    validated = validate_request(request, settings)
    speech = stages.speech_stage(validated, settings)
    driver = stages.driver_stage(stages.viseme_stage(speech, settings), speech, settings)
    analysis = stages.avatar_stage(validated.avatar, settings)
    target = Path(request.output).with_name(f".gate-off-{Path(request.output).name}")
    start = time.perf_counter()
    stages.render_stage(
        stages.RenderJob(validated, settings, stages.RenderInputs(analysis, driver, speech.wav_path), target)
    )
    seconds = time.perf_counter() - start
    target.unlink(missing_ok=True)
    return seconds


def fresh_home_settings(prefix: str = "dhf-bench-"):
    """Settings of a new, empty DHF home (cold caches) with the provisioned models linked in."""
    provisioned = load_settings().paths.models
    home = Path(tempfile.mkdtemp(prefix=prefix))
    (home / "models").symlink_to(provisioned, target_is_directory=True)
    return load_settings(home=home)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--sync", action="store_true", help="measure lip-sync on every output (slow)")
    args = parser.parse_args()
    settings = fresh_home_settings()
    args.out.mkdir(exist_ok=True)
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models)) if args.sync else None
    rows = []
    for index, text in enumerate(SENTENCES[: args.count]):
        target = args.out / f"s{index}.mp4"
        start = time.perf_counter()
        result = render_video(RenderRequest(text=text, avatar_id="sample", language="en", output=target), settings)
        wall = time.perf_counter() - start
        report = json.loads(result.report.read_text())
        duration = report["video"]["duration_s"]
        reference = ffmpeg_reference(
            duration, settings.video.width, settings.video.height, settings.video.fps, args.out / "reference.mp4"
        )
        gate = report["stage_seconds"].get("quality", 0.0)
        gate_on = report["stage_seconds"]["render"] + gate
        gate_off = render_without_gate(
            RenderRequest(text=text, avatar_id="sample", language="en", output=target), settings
        )
        rows.append(
            {
                "sentence": index,
                "duration_s": duration,
                "render_s": round(wall, 2),
                "quality_s": round(gate, 2),
                "ffmpeg_ref_s": round(reference, 2),
                "ratio_vs_ffmpeg": round(wall / reference, 2),
                "ratio_without_quality": round((wall - gate) / reference, 2),
                "render_gate_on_s": round(gate_on, 2),
                "render_gate_off_s": round(gate_off, 2),
                "ratio_gate_off": round(gate_off / reference, 2),
                "realtime_factor": round(wall / duration, 2),
                "evaluation_realtime_factor": round(gate / duration, 2),
                "quality_passed": report["quality"]["passed"],
                "process_ms_per_frame": report["process_ms_per_frame"],
                "stages": report["stage_seconds"],
            }
        )
        if analyser is not None:
            measured = measure_video(target, analyser)
            rows[-1]["video_sync"] = correlation_at_best_lag(measured.lip_gap, measured.audio_rms, measured.fps)
            rows[-1]["track_sync"] = report["driver_audio_sync"]
        print(json.dumps(rows[-1]), flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    keys = ("duration_s", "render_s", "quality_s", "ffmpeg_ref_s", "render_gate_on_s", "render_gate_off_s")
    total = {k: round(sum(r[k] for r in rows), 2) for k in keys}
    summary = {
        **total,
        "ratio_vs_ffmpeg": round(total["render_s"] / total["ffmpeg_ref_s"], 2),
        "ratio_without_quality": round((total["render_s"] - total["quality_s"]) / total["ffmpeg_ref_s"], 2),
        "ratio_gate_off": round(total["render_gate_off_s"] / total["ffmpeg_ref_s"], 2),
        "gate_cost_vs_ffmpeg": round(
            (total["render_gate_on_s"] - total["render_gate_off_s"]) / total["ffmpeg_ref_s"], 2
        ),
        "realtime_factor": round(total["render_s"] / total["duration_s"], 2),
        "evaluation_realtime_factor": round(total["quality_s"] / total["duration_s"], 2),
        "quality_passed": sum(r["quality_passed"] for r in rows),
        "peak_rss_mb": round(peak_mb),
    }
    if analyser is not None:
        values = sorted(r["video_sync"]["correlation"] for r in rows)
        summary["video_sync_min"] = values[0]
        summary["video_sync_median"] = values[len(values) // 2]
    print(json.dumps({"summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
