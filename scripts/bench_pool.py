"""Scale-out speed-up: the same 10-item × 2-language batch on a work pool with 1 worker, with 2
workers, and in-process (no pool), each from empty caches, all timed in the same run.

Each run gets a fresh DHF home (models linked) and its own throwaway Prefect server
(flows/local_cluster.py), so no run profits from another's caches. Speed-up = 1-worker time /
2-worker time; pool overhead = 1-worker time / in-process time - 1 (a flow-run process per video).
Usage: .venv/bin/python scripts/bench_pool.py [--items 10] [--languages en,zh] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_batch import ZH, fresh_home
from bench_render import SENTENCES

from flows.local_cluster import PROJECT_ROOT, LocalCluster


def write_script(folder: Path, items: int, languages: list[str]) -> Path:
    texts = [{"en": SENTENCES[i % 10], "zh": ZH[i % 10]} for i in range(items)]
    script = {
        "name": "bench",
        "avatar": "sample",
        "languages": languages,
        "items": [{"id": f"q{i}", "text": {lang: t[lang] for lang in languages}} for i, t in enumerate(texts)],
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(script, allow_unicode=True), encoding="utf-8")
    return path


def timed_batch(command: list[str], env: dict | None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"batch failed: {result.stderr[-2000:]}")
    return time.perf_counter() - start


def on_pool(workers: int, items: int, languages: list[str]) -> float:
    home = fresh_home()
    script = write_script(home, items, languages)
    with LocalCluster(Path(tempfile.mkdtemp(prefix="dhf-pool-bench-")), home).start(workers) as cluster:
        time.sleep(5)  # let every worker register before the first run is submitted
        return timed_batch(cluster.dhf("batch", str(script), "--out", str(home / "out"), "--pool"), cluster.env)


def in_process(items: int, languages: list[str]) -> float:
    import os

    home = fresh_home()
    script = write_script(home, items, languages)
    env = {**os.environ, "DHF_HOME": str(home), "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    return timed_batch([sys.executable, "-m", "cli.main", "batch", str(script), "--out", str(home / "out")], env)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--languages", default="en,zh")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    languages = args.languages.split(",")
    seconds = {f"pool_{n}_workers_s": round(on_pool(int(n), args.items, languages), 1) for n in args.workers.split(",")}
    seconds["in_process_s"] = round(in_process(args.items, languages), 1)
    summary = {"videos": args.items * len(languages), **seconds}
    if "pool_1_workers_s" in seconds and "pool_2_workers_s" in seconds:
        summary["speedup_2_vs_1"] = round(seconds["pool_1_workers_s"] / seconds["pool_2_workers_s"], 2)
        summary["pool_overhead_1_worker"] = round(seconds["pool_1_workers_s"] / seconds["in_process_s"] - 1, 3)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
