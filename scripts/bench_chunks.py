"""Long videos: single pass vs parallel chunks, and peak memory of a 10 s vs a 10-minute render.

Ratios measured in one run on one machine (the figures to compare across machines). For each length
the text is spoken and moved once (cached; the same for every variant and not timed), then:
- single:        stages.render_stage (one process) + the quality gate on its output;
- chunked local: pipeline.chunked.render_stage with `--workers` local processes + the same gate;
- chunked pool:  (--pool) the chunks as flow runs on a throwaway Prefect server with `--workers` workers.
The gate runs as in the pipeline: `render_s` includes what the monitor does during the render (a single
pass is observed while it encodes; a chunked one is decoded and observed after the join), `gate_s`
is the rest (waiting for the monitor, the keyframe check, the scores).

Usage:
    .venv/bin/python scripts/bench_chunks.py [--seconds 60 300] [--workers 2] [--pool] [--out bench-out]
    .venv/bin/python scripts/bench_chunks.py --memory 600     # one chunked render + gate, peak RSS as JSON
    .venv/bin/python scripts/bench_chunks.py --memory 10      # the same for 10 s (a single pass)
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

from bench_render import SENTENCES

from config import load_settings
from media.video import probe
from pipeline import chunked, stages
from pipeline.chunked import peak_rss_mb
from pipeline.request import RenderRequest, validate_request
from quality.inline import EncodeMonitor, judge_encoded, monitor_setup

SECONDS_PER_SENTENCE = 10.5  # the bench sentences at the default English voice


def long_text(seconds: float) -> str:
    """About `seconds` of speech: the bench sentences in turn, numbered so no two are the same."""
    count = max(1, round(seconds / SECONDS_PER_SENTENCE))
    return " ".join(f"Part {i + 1}. {SENTENCES[i % len(SENTENCES)]}" for i in range(count))


def fresh_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="dhf-bench-chunks-"))
    (home / "models").symlink_to(load_settings().paths.models, target_is_directory=True)
    return home


def prepare(home: Path, seconds: float, workers: int, out: Path):
    """Validated request and the stages before the render (speech, visemes, driver, avatar)."""
    settings = load_settings(home=home).with_section("text", max_chars=100_000)
    settings = settings.with_section("chunking", workers=workers)
    request = RenderRequest(text=long_text(seconds), avatar_id="sample", language="en", output=out / "video.mp4")
    validated = validate_request(request, settings)
    speech = stages.speech_stage(validated, settings)
    visemes = stages.viseme_stage(speech, settings)
    driver = stages.driver_stage(visemes, speech, settings)
    analysis = stages.avatar_stage(validated.avatar, settings)
    return settings, validated, speech, visemes, driver, analysis


def timed_render(variant: str, prepared, target: Path, runner=None) -> dict:
    """One render and its quality gate as the pipeline runs them: the single pass observed while it
    encodes; the chunked one observed from the joined file after the chunks (pipeline.chunked)."""
    settings, validated, speech, visemes, driver, analysis = prepared
    video = settings.video
    setup = monitor_setup(validated.avatar, settings)
    monitor = EncodeMonitor(setup, video.width, video.height, video.fps, settings.quality.analysis_height)
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    inputs = stages.RenderInputs(analysis, driver, speech.wav_path, speech)
    job = stages.RenderJob(validated, settings, inputs, target, monitor)
    rendered = stages.render_stage(job) if variant == "single" else chunked.render_stage(job, runner)
    render_s = time.perf_counter() - start
    render_cpu = cpu_seconds() - cpu_before  # this process + finished children (ffmpeg, chunk processes)
    start = time.perf_counter()
    quality = judge_encoded(monitor, target, settings.quality, [tuple(s) for s in visemes.closures])
    gate_s = time.perf_counter() - start
    chunks = rendered.get("chunks", {})
    return {
        "variant": variant,
        "frames": rendered.frames,
        "render_s": round(render_s, 2),
        "render_cpu_s": round(render_cpu, 1),
        "cores_busy": round(render_cpu / render_s, 2),
        "gate_s": round(gate_s, 2),
        "total_s": round(render_s + gate_s, 2),
        "passed": quality.passed,
        "chunks": chunks.get("count", 1),
        "chunk_seconds": chunks.get("chunk_seconds"),
        "join_s": chunks.get("join_seconds"),
        "chunk_peak_rss_mb": chunks.get("chunk_peak_rss_mb", []),
    }


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for descendants (a pool worker's runs are not counted)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def compare(seconds: float, workers: int, pool: bool, out: Path) -> dict:
    home = fresh_home()
    folder = out / f"{round(seconds)}s"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prepared = prepare(home, seconds, workers, folder)
    prepare_s = time.perf_counter() - start
    rows = [timed_render("single", prepared, folder / "single.mp4")]
    rows.append(timed_render(f"local x{workers}", prepared, folder / "local.mp4"))
    if pool:
        rows.append(pool_render(home, workers, prepared, folder))
    single = rows[0]
    for row in rows[1:]:
        row["render_ratio"] = round(row["render_s"] / single["render_s"], 2)
        row["total_ratio"] = round(row["total_s"] / single["total_s"], 2)
    duration = rows[0]["frames"] / prepared[0].video.fps
    return {"seconds": round(duration, 1), "speech_and_motion_s": round(prepare_s, 2), "rows": rows}


def pool_render(home: Path, workers: int, prepared, folder: Path) -> dict:
    """The chunks on a throwaway Prefect server with `workers` pool workers (flows.local_cluster)."""
    import os

    from flows.chunk_flow import PoolChunkRunner, deploy_chunk_flow
    from flows.local_cluster import LocalCluster

    settings = prepared[0]
    with LocalCluster(folder / "cluster", home) as cluster:
        cluster.start(workers)
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = cluster.url
        try:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings({PREFECT_API_URL: cluster.url}):
                deploy_chunk_flow(settings.factory)
                time.sleep(settings.factory.worker_query_seconds)
                row = timed_render(f"pool x{workers}", prepared, folder / "pool.mp4", PoolChunkRunner(settings.factory))
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
    return row


def memory(seconds: float, workers: int, out: Path, home: Path | None) -> dict:
    """One render (chunked when long enough) and its gate in this process: peak RSS of this process
    (the submitter, which also runs the gate) and of every chunk process."""
    out.mkdir(parents=True, exist_ok=True)
    prepared = prepare(home or fresh_home(), seconds, workers, out)
    settings, _, speech, _, driver, _ = prepared
    row = timed_render("chunked", prepared, out / f"memory-{round(seconds)}s.mp4")
    plan = chunked.plan_for(driver, speech, settings)
    rendered = probe(out / f"memory-{round(seconds)}s.mp4")
    return {
        "duration_s": round(plan.frame_count / settings.video.fps, 1),
        "chunks": row["chunks"],
        "frames": rendered.frames,
        "expected_frames": plan.frame_count,
        "render_s": row["render_s"],
        "gate_s": row["gate_s"],
        "passed": row["passed"],
        "parent_peak_rss_mb": round(peak_rss_mb()),
        "chunk_peak_rss_mb": row["chunk_peak_rss_mb"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, nargs="+", default=[60.0, 300.0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", action="store_true", help="also run the chunks on a local Prefect work pool")
    parser.add_argument("--memory", type=float, help="only: peak RSS of one render of this many seconds")
    parser.add_argument("--home", type=Path, help="DHF home with models (default: a fresh one, models linked)")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(memory(args.memory, args.workers, args.out, args.home)), flush=True)
        return 0
    for seconds in args.seconds:
        print(json.dumps(compare(seconds, args.workers, args.pool, args.out)), flush=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"machine_load": load}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
