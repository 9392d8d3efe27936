"""Memory flatness: peak RSS of a short and a long render, each in a fresh process.

Frames are streamed (one work frame, one output frame and a few queued encoder frames live at a
time), so peak memory must not grow with video length. Usage:
    .venv/bin/python scripts/bench_memory.py [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_render import SENTENCES

CHILD = """
import json, resource, sys, time
from pathlib import Path
from config import load_settings
from pipeline.run import render_video
from pipeline.request import RenderRequest
settings = load_settings(home=Path(sys.argv[1]))
start = time.perf_counter()
request = RenderRequest(text=sys.argv[2], avatar_id="sample", language="en", output=Path(sys.argv[3]))
result = render_video(request, settings)
report = json.loads(result.report.read_text())
print(json.dumps({"duration_s": report["video"]["duration_s"], "frames": result.frames,
                  "render_s": round(time.perf_counter() - start, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def measure(text: str, home: Path, output: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), text, str(output)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    from config import load_settings

    home = Path(tempfile.mkdtemp(prefix="dhf-memory-"))
    (home / "models").symlink_to(load_settings().paths.models, target_is_directory=True)
    args.out.mkdir(exist_ok=True)
    short = measure(" ".join(SENTENCES[:1]) + " Thank you.", home, args.out / "short.mp4")
    long = measure(" ".join(SENTENCES[:8]), home, args.out / "long.mp4")
    growth = long["peak_rss_mb"] / short["peak_rss_mb"] - 1
    print(json.dumps({"short": short, "long": long, "peak_rss_growth": round(growth, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
