"""Streamed answers against file renders (issue 30), on one warm `dhf api` server and headless Chromium.

For one-, two- and five-sentence answers, with the espeak voice and the neural voice:
- time to first segment: the server's `first_release_s` (request arrival → first segment released to the
  playlist), read from GET /v1/streams/<id> once the stream ended;
- time to first frame played: measured by the demo page's own script in Chromium (`/player`: the page posts
  the question, hls.js plays it; requestVideoFrameCallback's time of the first presented frame, from the
  moment the POST was sent), so it includes the browser's playlist and segment fetches and its decoder;
- the stream's whole render (created → ended) and, for the same text on the same server, the file render:
  POST /v1/videos, polled every 0.1 s until succeeded (the time a viewer of a file waits before frame one).
Runs are sequential (one stream at a time). The server is warmed first by one stream per voice (models,
TTS sessions, engines loaded, as `settings.streaming.prewarm_avatars` keeps them in production).
Usage:
    .venv/bin/python scripts/bench_stream.py [--runs 10] [--other-runs 3] [--file-runs 3] [--write]
`--write` replaces the section between the bench_stream markers in docs/benchmarks.md; the raw figures go
to bench-out/bench_stream.json either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "reliability")]

from chromium import Chromium  # noqa: E402

from config import load_settings  # noqa: E402
from flows.local_cluster import free_port  # noqa: E402

SENTENCES = [
    "Your deposit rate is three point five percent.",
    "You can open a deposit in the app today.",
    "The money stays in the account for one year.",
    "Interest is paid into your current account every quarter.",
    "Is there anything else I can help you with?",
]
TEXTS = {1: " ".join(SENTENCES[:1]), 2: " ".join(SENTENCES[:2]), 5: " ".join(SENTENCES)}
# Every run says something new: the speech, timing and motion caches (per text) would otherwise make every
# repeat of a text faster than a customer's new question (a first run measured 1.4 s to the first segment,
# its repeats 1.0 s).
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RATES = [f"{DIGITS[whole]} point {DIGITS[tenth]}" for whole in range(1, 10) for tenth in range(10)]  # 90 rates
GROUP_OFFSET = {1: 0, 2: 30, 5: 60}  # each group's runs and file renders use rates no other group uses


def variant(text: str, index: int) -> str:
    """The text with another rate in its first clause: a new first part for every run of a group. Why
    there: the first part spoken is the first clause (streaming/parts.py), and the speech and Kokoro's
    sentence cache are keyed by text, so a run whose first clause repeats an earlier run's skips the
    synthesis that decides its first frame (a leading "Anna," made that part one word; a name after
    the clause left the clause itself repeated). The groups share a server, hence GROUP_OFFSET."""
    return text.replace("three point five", RATES[index % len(RATES)], 1)


VOICES = {"espeak": "en-us-female", "neural": "en-us-neural-female"}
BODY = {"language": "en", "avatar_id": "sample", "channel": "demo", "purpose": "demo"}
BEGIN, END = "<!-- bench_stream:begin -->", "<!-- bench_stream:end -->"


class Server:
    """`dhf api` on a free port with its own home (models linked from the provisioned one)."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DHF_HOME": str(home), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "0"}
        env.pop("PREFECT_API_URL", None)
        self.env = env
        self.log = (home / "api.log").open("a")
        # polled several times a second: above the per-key rate limit of a production server
        config = home / "bench-api.yaml"
        config.write_text("api:\n  rate_per_minute: 100000\n", encoding="utf-8")
        command = [sys.executable, "-m", "cli.main", "--config", str(config), "api", "--port", str(self.port)]
        self.process = subprocess.Popen(command,
                                        cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise SystemExit(f"dhf api did not start: see {home / 'api.log'}")
        create = [sys.executable, "-m", "cli.main", "api-key", "create", "--name", "bench", "--scopes", "render,read"]
        made = subprocess.run(create, cwd=REPO, env=env, capture_output=True, text=True)
        if made.returncode != 0:
            raise SystemExit(made.stderr)
        self.key = made.stdout.strip()
        self.headers = {"X-API-Key": self.key}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)

    def ended(self, stream_id: str, timeout: float = 180, page: Chromium | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = httpx.get(f"{self.url}/v1/streams/{stream_id}", headers=self.headers, timeout=10).json()
            if state.get("ended"):
                return state
            if page is not None:
                page.evaluate("1")  # reads the browser's queued events: a full queue starves its keepalive
            time.sleep(0.2)
        raise SystemExit(f"stream {stream_id} did not end in {timeout:.0f} s")

    def stream(self, text: str, voice: str) -> dict:
        posted = httpx.post(f"{self.url}/v1/streams", json={**BODY, "text": text, "voice": voice},
                            headers=self.headers, timeout=60)  # fmt: skip
        if posted.status_code not in (201, 202):
            raise SystemExit(f"POST /v1/streams: {posted.status_code} {posted.text}")
        return self.ended(posted.json()["stream_id"])

    def file_render(self, text: str, voice: str) -> float:
        """Seconds from POST /v1/videos to its job succeeded (what a viewer of the file waits)."""
        start = time.monotonic()
        posted = httpx.post(f"{self.url}/v1/videos", json={**BODY, "text": text, "voice": voice},
                            headers=self.headers, timeout=60)  # fmt: skip
        if posted.status_code not in (201, 202):
            raise SystemExit(f"POST /v1/videos: {posted.status_code} {posted.text}")
        job = posted.json()["job_id"]
        while True:
            status = httpx.get(f"{self.url}/v1/videos/{job}", headers=self.headers, timeout=10).json()
            if status["status"] == "succeeded":
                return time.monotonic() - start
            if status.get("status", "failed") == "failed":
                raise SystemExit(f"file render failed: {status}")
            time.sleep(0.1)


def browser_stream(page: Chromium, server: Server, text: str, voice: str) -> dict:
    """One question through the demo page; its first-frame time and the server's figures of the stream."""
    page.open(f"{server.url}/player")
    if not page.wait_for("document.getElementById('send') && !document.getElementById('send').disabled"):
        raise SystemExit("the demo page did not load")
    fill = {"key": server.key, "text": text, "voice": voice, "channel": "demo", "purpose": "demo"}
    page.evaluate(f"(function(){{var f=document.getElementById('ask'), v={json.dumps(fill)};"
                  "for (var k in v) { f.elements[k].value = v[k]; } })()")  # fmt: skip
    page.send("Runtime.evaluate", expression="document.getElementById('send').click()", userGesture=True)
    raw = page.wait_for("(function(){var m = window.dhfPlayer; return m && (m.firstFrameMs !== null || "
                        "m.requestError) ? JSON.stringify(m) : ''})()", timeout=120)  # fmt: skip
    metrics = json.loads(raw or "{}")
    if metrics.get("firstFrameMs") is None:
        raise SystemExit(f"no frame played: {metrics}")
    state = server.ended(metrics["streamId"], page=page)
    return {
        "first_frame_s": metrics["firstFrameMs"] / 1000,
        "post_answered_s": metrics["postedMs"] / 1000,
        "first_release_s": state["first_release_s"],
        "stream_total_s": (state["ended_at"] or time.time()) - state["created"],
        "status": state["status"],
        "segments": state["released_segments"],
        "seconds": state["released_seconds"],
    }


def save(results: dict) -> None:
    """The raw figures so far (a long run that stops halfway keeps what it measured)."""
    out = REPO / "bench-out"
    out.mkdir(exist_ok=True)
    (out / "bench_stream.json").write_text(json.dumps(results, indent=1))


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p90": p90, "n": len(ordered)}


def table(results: dict) -> str:
    lines = [
        "| voice | sentences | answer s | first segment (server) median / p90 | first frame played (browser) "
        "median / p90 | n | stream ended | file render done (n) | first frame: stream vs file |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for voice, by_length in results.items():
        for length, entry in sorted(by_length.items(), key=lambda item: int(item[0])):
            runs = entry["streams"]
            release, frame = summary([r["first_release_s"] for r in runs]), summary([r["first_frame_s"] for r in runs])
            total = summary([r["stream_total_s"] for r in runs])
            files = summary(entry["file_renders"]) if entry["file_renders"] else None
            file_text = f"{files['median']:.2f} s ({files['n']})" if files else "—"
            ratio = f"{files['median'] / frame['median']:.1f}× sooner" if files else "—"
            lines.append(
                f"| {voice} | {length} | {statistics.median(r['seconds'] for r in runs):.1f} | "
                f"{release['median']:.2f} / {release['p90']:.2f} s | {frame['median']:.2f} / {frame['p90']:.2f} s | "
                f"{frame['n']} | {total['median']:.2f} s | {file_text} | {ratio} |"
            )
    return "\n".join(lines)


def write_section(text: str, path: Path = REPO / "docs" / "benchmarks.md") -> None:
    document = path.read_text(encoding="utf-8")
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        document = head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1]
    else:
        document = document.rstrip("\n") + "\n\n" + BEGIN + "\n" + text + "\n" + END + "\n"
    path.write_text(document, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="streams of the one-sentence answer per voice")
    parser.add_argument("--other-runs", type=int, default=3, help="streams of the longer answers per voice")
    parser.add_argument("--file-runs", type=int, default=3, help="file renders per text and voice")
    parser.add_argument("--voices", nargs="+", default=list(VOICES), choices=list(VOICES))
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--resume", action="store_true", help="keep the groups bench-out/bench_stream.json has")
    args = parser.parse_args()

    models = load_settings().paths.models
    home = Path(tempfile.mkdtemp(prefix="dhf-bench-stream-"))
    (home / "models").symlink_to(models, target_is_directory=True)
    server = Server(home)
    results: dict = {}
    started = time.time()
    if args.resume and (REPO / "bench-out" / "bench_stream.json").is_file():
        results = json.loads((REPO / "bench-out" / "bench_stream.json").read_text())
    try:
        for voice in args.voices:
            server.stream("Hello.", VOICES[voice])  # warm: this voice's session, the stream code
        for voice in args.voices:
            results.setdefault(voice, {})
            for length, text in TEXTS.items():
                if str(length) in results[voice]:
                    continue  # --resume: measured by the run that stopped
                runs = args.runs if length == 1 else args.other_runs
                streams = []
                # a browser per group: its DevTools socket must not sit idle through the file renders
                with Chromium() as page:
                    for index in range(runs):
                        said = variant(text, GROUP_OFFSET[length] + index)
                        streams.append(browser_stream(page, server, said, VOICES[voice]))
                        print(f"{voice} {length} sentence(s) #{index + 1}: {json.dumps(streams[-1])}", file=sys.stderr)
                files = [
                    server.file_render(variant(text, GROUP_OFFSET[length] + runs + i), VOICES[voice])
                    for i in range(args.file_runs)
                ]
                print(f"{voice} {length} sentence(s) file renders: {files}", file=sys.stderr)
                results[voice][str(length)] = {"streams": streams, "file_renders": files}
                save(results)
    finally:
        server.stop()
    load = os.getloadavg()
    save(results)
    rendered = table(results)
    print(rendered)
    if args.write:
        day = time.strftime("%Y-%m-%d", time.gmtime(started))
        write_section(
            f"## Streamed answers (issue 30): first segment and first frame played vs the file render "
            f"({day}, {os.cpu_count()} cores shared, load average {load[0]:.1f} at the end, {platform.system()})\n\n"
            "Reproduce: `.venv/bin/python scripts/bench_stream.py --write` (one warm `dhf api`, headless Chromium "
            "on the demo page `/player`, streams one at a time; the canvas and segment length are "
            "`settings.streaming`'s defaults).\n\n"
            + rendered
            + '\n\n"first segment": request arrival → first segment released (server, `first_release_s`). '
            '"first frame played": the page\'s POST sent → first frame the `<video>` presented '
            '(requestVideoFrameCallback), including the browser\'s fetches and decoding. "stream ended": the '
            'whole stream rendered and published. "file render done": POST /v1/videos → job succeeded, the '
            "earliest a file's first frame can play; the last column divides it by the stream's first frame."
        )


if __name__ == "__main__":
    main()
