"""Cost of the AI marks (invisible watermark + C2PA signing + metadata) on a ~10 s render.

Renders the same sentences with the marks and, for this measurement only, with the watermark
processor replaced by a pass-through and C2PA signing skipped (a monkeypatch here, not a product
switch: renders always carry every mark). Variants alternate, speech and driver come from the cache,
so the difference is the marks. Also reports the marks' own timers from the report and the file size.
Usage: .venv/bin/python scripts/bench_marks.py [--count 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_render import SENTENCES

import fusion.engine
import pipeline.stages
from config import load_settings
from pipeline.request import RenderRequest
from pipeline.run import render_video


class PassThrough:
    """Stands in for the watermarker in the unmarked variant."""

    name = "watermarker"
    seconds = 0.0

    def __init__(self, *args) -> None:
        pass

    def requirements(self) -> list[str]:
        return []

    def prepare(self, base):
        return base

    def process_frame(self, frame, context):
        return frame


def render_once(text: str, out: Path, settings, marked: bool) -> tuple[float, dict]:
    originals = (fusion.engine.Watermarker, pipeline.stages.seal)
    if not marked:
        fusion.engine.Watermarker = PassThrough
        pipeline.stages.seal = lambda *args, **kwargs: {
            "content_id": "unmarked",
            "watermark": {"scheme": "none", "payload": "00000000"},
            "c2pa": {"signed": False, "test_certificate": False, "algorithm": "none"},
            "sign_seconds": 0.0,
        }
    try:
        start = time.perf_counter()
        result = render_video(RenderRequest(text=text, avatar_id="sample", language="en", output=out), settings)
        seconds = time.perf_counter() - start
    finally:
        fusion.engine.Watermarker, pipeline.stages.seal = originals
    return seconds, json.loads(result.report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dhf-marks-bench-"))
    (home / "models").symlink_to(load_settings().paths.models, target_is_directory=True)
    settings = load_settings(home=home)
    texts = SENTENCES[: args.count]
    for index, text in enumerate(texts):  # warm the speech/driver caches and the process
        render_once(text, home / f"warm{index}.mp4", settings, True)
    totals = {True: [], False: []}
    render_stage = {True: [], False: []}
    sizes = {True: [], False: []}
    watermark_ms, sign_s, durations = [], [], []
    for round_ in range(args.rounds):
        for index, text in enumerate(texts):
            for marked in (round_ % 2 == 0, round_ % 2 == 1):
                out = home / f"r{round_}-{index}-{'marked' if marked else 'plain'}.mp4"
                seconds, report = render_once(text, out, settings, marked)
                totals[marked].append(seconds)
                render_stage[marked].append(report["stage_seconds"]["render"])
                sizes[marked].append(out.stat().st_size)
                durations.append(report["video"]["duration_s"])
                if marked:
                    watermark_ms.append(report["provenance"]["watermark_ms_per_frame"])
                    sign_s.append(report["provenance"]["sign_seconds"])
    summary = {
        "renders_per_variant": len(totals[True]),
        "mean_video_s": round(statistics.mean(durations), 1),
        "render_s_marked": round(statistics.mean(totals[True]), 2),
        "render_s_unmarked": round(statistics.mean(totals[False]), 2),
        "marks_cost_whole_render": round(sum(totals[True]) / sum(totals[False]) - 1, 3),
        "marks_cost_render_stage": round(sum(render_stage[True]) / sum(render_stage[False]) - 1, 3),
        "watermark_ms_per_frame": round(statistics.mean(watermark_ms), 2),
        "sign_seconds": round(statistics.mean(sign_s), 3),
        "file_size_ratio": round(sum(sizes[True]) / sum(sizes[False]), 3),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
