"""Scene benchmark: a branded 9:16 render against the plain 16:9 one, same texts, same machine.

The figure that matters is the ratio of the render stage (frames made and encoded), which must stay
within 10 % (issue 20): a scene composes its static parts once per video and blends only the dirty
rectangle per frame; its canvas has as many pixels as 1920×1080. Renders alternate (plain, branded,
plain, …) so the shared machine's noise hits both alike; speech and the avatar analysis are cached
after the first render of a text, so the stages compared are the render and the quality gate.
    .venv/bin/python scripts/bench_scenes.py [--count 3] [--scene app] [--out bench-scenes]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import load_settings
from pipeline.report import RenderReport
from pipeline.request import RenderRequest, output_paths
from pipeline.run import render_video

SENTENCES = [
    "Welcome to our bank. Today I will explain how a one-year fixed deposit works, what rate you get, and when "
    "you can withdraw your money without losing any interest.",
    "Your deposit earns 3.5% per year. Interest is calculated daily and paid at maturity, together with the "
    "amount you put in, straight into your current account.",
    "If you need the money early, you can close the deposit at any time, but the interest will then be paid at "
    "the lower demand rate for the whole period you held it.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3, help="texts (each rendered plain and branded)")
    parser.add_argument("--scene", default="app")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dhf-bench-scenes-"))
    (home / "models").symlink_to(load_settings().paths.models, target_is_directory=True)
    settings = load_settings(home=home)
    out = args.out or home / "out"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, text in enumerate(SENTENCES[: args.count]):
        for kind, scene in (("warm-up", "none"), ("plain", "none"), ("branded", args.scene)):
            target = out / f"{index}-{kind}.mp4"
            render_video(
                RenderRequest(text=text, avatar_id="sample", language="en", output=target, scene=scene), settings
            )
            report = RenderReport.load(output_paths(target)["report"])
            if kind == "warm-up":
                continue  # speech, driver and avatar analysis now cached for both
            row = {
                "text": index,
                "kind": kind,
                "canvas": f"{report.video.width}x{report.video.height}",
                "frames": report.frames,
                "render_s": report.stage_seconds["render"],
                "quality_s": report.stage_seconds.get("quality", 0.0),
                "process_ms_per_frame": report.process_ms_per_frame,
                "watermark_ms_per_frame": report.provenance.watermark_ms_per_frame,
            }
            rows.append(row)
            print(json.dumps(row))
    summary = {}
    for kind in ("plain", "branded"):
        picked = [r for r in rows if r["kind"] == kind]
        frames = sum(r["frames"] for r in picked)
        summary[kind] = {
            "render_ms_per_frame": round(1000 * sum(r["render_s"] for r in picked) / frames, 1),
            "process_ms_per_frame": round(statistics.median(r["process_ms_per_frame"] for r in picked), 1),
        }
    ratio = summary["branded"]["render_ms_per_frame"] / summary["plain"]["render_ms_per_frame"]
    summary["branded/plain render"] = round(ratio, 3)
    print(json.dumps(summary, indent=1))
    return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
