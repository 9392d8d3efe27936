"""CLI start-up benchmark: `dhf render` wall time vs `pipeline.run.render_video` in this process.

Why a ratio measured in one run: the machine is shared and noisy, so absolute seconds mean little;
both sides render the same ~2 s sentence, alternately, with the same warm caches (speech, driver and
avatar analysis cached by a warm-up render), so the difference is what the command line adds:
interpreter start, imports, and (with a Prefect server configured) the flow run. Also times
`python -c "import cli.main"` and `dhf --help` (target ≤ 1 s each). Usage:
    .venv/bin/python scripts/bench_cli.py [--rounds 3] [--text "Your card is on its way."]
Without PREFECT_API_URL in the environment the CLI renders in process (no Prefect at all); with it,
the CLI's render is a flow run on that server and the ratio shows what the orchestrator costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config import load_settings
from pipeline.request import RenderRequest
from pipeline.run import render_video

REPO = Path(__file__).resolve().parent.parent
DHF = [sys.executable, "-m", "cli.main"]


def timed(command: list[str], env: dict[str, str]) -> float:
    return timed_cpu(command, env)[0]


def timed_cpu(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of a child process. The CPU time barely moves
    with the load of other processes on a shared machine, the wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:4])}… failed ({result.returncode}): {result.stderr[-1500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fresh_home(folder: Path) -> Path:
    """A DHF home of its own (models linked from the provisioned one), so the audit log and caches
    of the benchmark never mix with the user's."""
    home = folder / "home"
    home.mkdir()
    (home / "models").symlink_to(load_settings().paths.models, target_is_directory=True)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--text", default="Your card is on its way.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        folder = Path(tmp)
        home = fresh_home(folder)
        env = {**os.environ, "DHF_HOME": str(home)}
        settings = load_settings(home=home)

        def in_process(name: str) -> float:
            request = RenderRequest(text=args.text, avatar_id="sample", language="en", output=folder / name)
            started = time.perf_counter()
            render_video(request, settings)
            return time.perf_counter() - started

        def cli(name: str) -> float:
            return timed(
                [*DHF, "render", args.text, "--avatar", "sample", "--lang", "en", "-o", str(folder / name), "--quiet"],
                env,
            )

        warm = in_process("warm.mp4")  # fills the speech, driver and avatar caches (and this process's imports)
        cli_s, lib_s = [], []
        for index in range(args.rounds):  # alternate, so drift in machine load hits both sides alike
            cli_s.append(cli(f"cli{index}.mp4"))
            lib_s.append(in_process(f"lib{index}.mp4"))
        imports = [timed_cpu([sys.executable, "-c", "import cli.main"], env) for _ in range(5)]
        helps = [timed_cpu([*DHF, "--help"], env) for _ in range(5)]
    cli_med, lib_med = statistics.median(cli_s), statistics.median(lib_s)
    server = os.environ.get("PREFECT_API_URL") or "none (renders in process)"
    print(f"Prefect server: {server}")
    print(f"text: {args.text!r}; warm-up render {warm:.2f} s; {args.rounds} rounds, medians:")
    print(f"  dhf render (wall, new process)   {cli_med:6.2f} s   {[round(s, 2) for s in cli_s]}")
    print(f"  render_video (in this process)   {lib_med:6.2f} s   {[round(s, 2) for s in lib_s]}")
    print(f"  ratio CLI / in-process           {cli_med / lib_med:6.2f}x  (target <= 1.5x)")
    for label, runs in (("python -c 'import cli.main'", imports), ("dhf --help", helps)):
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        print(f"  {label:<32} {wall:6.2f} s wall, {cpu:.2f} s CPU  (target <= 1 s)")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
