"""How a long render's chunk jobs run: the job and its result as plain data (JSON across process and
machine boundaries), the `ChunkRunner` interface, and its implementations on this machine.

Why a module of its own, below `pipeline.chunked`: the chunked render takes a runner (by default
`LocalRunner`), and the runners only need the job's wire format, not the render, so the render can
import them without an import cycle. Where a render's chunks run is decided once, in
`flows.executors.executor_for`; the work-pool runner is `flows.chunk_flow.PoolChunkRunner`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from config import Settings
from pipeline.chunks import ChunkingError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ChunkJob:
    """Everything a chunk process needs; plain data, so it crosses process and machine boundaries
    (a work-pool flow run's parameters). The files it names are in the render's work folder, beside
    the output, which pool workers share with the submitter."""

    index: int
    start: int
    stop: int
    avatar_id: str
    avatar_version: int
    settings: Settings
    track: Path  # the whole motion track (NPZ)
    segment: Path  # where the chunk's video-only MP4 goes
    watermark_payload: int
    mode: str = "normal"
    audio: Path | None = None  # the speech, beside the track, when a processor hears it (lip_syncer)
    observe: bool = False  # run the quality gate's monitor on the chunk's frames (saved beside the segment)
    timings: Path | None = None  # the speech's timed words, beside the track, when the scene burns captions in

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ChunkResult:
    index: int
    frames: int
    processors: list[str]
    reenact_seconds: float
    watermark_seconds: float
    seconds: float
    peak_rss_mb: float  # of the process that rendered the chunk (a reused worker: its peak so far)
    providers: dict[str, str] = field(default_factory=dict)  # model → execution provider it ran on


class ChunkRunner(Protocol):
    """Runs chunk jobs somewhere and returns their results in job order; `progress(index, frames)`
    reports frames done within chunk `index` (as often as the runner can)."""

    def __call__(self, jobs: list[ChunkJob], progress: Callable[[int, int], None]) -> list[ChunkResult]: ...


class LocalRunner:
    """Chunks as `python -m pipeline.chunk_worker` processes on this machine, `workers` at a time.

    Why plain subprocesses and not multiprocessing: a spawned multiprocessing child re-imports the
    caller's main module (a script without a `__main__` guard would start again), and a forked one
    copies whatever threads the caller runs (Prefect's, the encoder's) mid-state. A subprocess reads
    its job as JSON on stdin and answers progress and its result as lines on stdout; a failed chunk
    stops the others at once."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def __call__(self, jobs: list[ChunkJob], progress: Callable[[int, int], None]) -> list[ChunkResult]:
        messages: queue.Queue[tuple[int, int]] = queue.Queue()
        running: list[subprocess.Popen] = []
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs)), thread_name_prefix="chunk") as pool:
            futures = [pool.submit(_run_worker, job, messages, running, stop) for job in jobs]
            try:
                while True:
                    finished, pending = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
                    _drain(messages, progress)
                    failed = [f for f in finished if f.exception() is not None]
                    if failed:
                        raise failed[0].exception()
                    if not pending:
                        return [future.result() for future in futures]
            finally:
                stop.set()  # queued chunks do not start; running ones are killed
                for future in futures:
                    future.cancel()
                for process in list(running):
                    if process.poll() is None:
                        process.kill()


class NoServerRunner:
    """`chunking.executor: pool` for a render without a Prefect server: a long text fails in one line
    (before any frame is rendered; a short one never gets here and renders as usual)."""

    def __call__(self, jobs: list[ChunkJob], progress: Callable[[int, int], None]) -> list[ChunkResult]:
        raise ChunkingError(
            "chunking.executor is 'pool' but this render runs without a Prefect server; set PREFECT_API_URL "
            "(README: Scale-out) or use chunking.executor: local"
        )


def _drain(messages: queue.Queue[tuple[int, int]], progress: Callable[[int, int], None]) -> None:
    while True:
        try:
            index, done = messages.get_nowait()
        except queue.Empty:
            return
        progress(index, done)


def _run_worker(
    job: ChunkJob, messages: queue.Queue[tuple[int, int]], running: list[subprocess.Popen], stop: threading.Event
) -> ChunkResult:
    """One chunk in a child process (run in a thread of the submitter): relay its progress lines,
    return its result line, or raise its one-line error."""
    if stop.is_set():
        raise ChunkingError(f"chunk {job.index} was not started: another chunk failed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty child cannot block on it
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.chunk_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, env=env, text=True, cwd=PROJECT_ROOT,
        )  # fmt: skip
        running.append(process)
        try:
            process.stdin.write(job_to_json(job) + "\n")
            process.stdin.flush()  # stdin stays open: the child exits when it closes (this process died)
            answer: dict | None = None
            for line in process.stdout:
                kind, _, payload = line.partition(" ")
                if kind == "progress":
                    messages.put((job.index, int(payload)))
                elif kind in ("result", "error"):
                    answer = {"kind": kind, **json.loads(payload)}
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace").strip().splitlines()
    if answer is not None and answer["kind"] == "result" and code == 0:
        return ChunkResult(**{k: v for k, v in answer.items() if k != "kind"})
    if stop.is_set():
        raise ChunkingError(f"chunk {job.index} was stopped: another chunk failed")
    reason = answer["message"] if answer is not None and answer["kind"] == "error" else None
    reason = reason or (stderr[-1] if stderr else f"its process exited with status {code}")
    raise ChunkingError(f"chunk {job.index + 1} (frames {job.start}-{job.stop}) failed: {reason}")


def job_to_json(job: ChunkJob) -> str:
    data = {**{f: getattr(job, f) for f in ChunkJob.__dataclass_fields__ if f != "settings"}}
    data.update(track=str(job.track), segment=str(job.segment), settings=json.loads(job.settings.model_dump_json()))
    data.update(audio=str(job.audio) if job.audio is not None else None)
    data.update(timings=str(job.timings) if job.timings is not None else None)
    return json.dumps(data)


def job_from_json(text: str) -> ChunkJob:
    data = json.loads(text)
    settings = Settings.model_validate(data["settings"])
    data.update(track=Path(data["track"]), segment=Path(data["segment"]), settings=settings)
    data.update(audio=Path(data["audio"]) if data.get("audio") else None)
    data.update(timings=Path(data["timings"]) if data.get("timings") else None)
    return ChunkJob(**data)
