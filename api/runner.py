"""Runs the API's jobs in this process: a thread pool of `api.concurrent_renders` renders.

Each video job renders through the executor `flows.executors.executor_for` gives the API (in this
process, or on the work pool with `api.executor: pool`): the same pipeline, quality gate, marks and
audit as the CLI, the audit's user `api-key:<id>`, writing into `<home>/api/jobs/<job id>/`. Batch jobs run the batch
flow into `<home>/api/jobs/<job id>/out/`. Progress goes to the job store as frames render.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from api.jobs import Job, JobStore
from api.metrics import Metrics
from config import Settings
from config.errors import DhfError
from flows.batch_flow import batch_flow
from flows.executors import executor_for
from pipeline.batch_jobs import JobResult
from pipeline.batch_script import BatchJobsFailedError, validate_script
from pipeline.report import RenderReport
from pipeline.request import RenderRequest, output_paths

PROGRESS_EVERY_S = 0.5


class JobCancelledError(Exception):
    """The job's owner cancelled it (the studio's Cancel): raised from the frame hook, so a running
    render stops at its next frame, through the same failure path (audit, cleanup) as any error."""


def job_folder(settings: Settings, job_id: str) -> Path:
    return settings.paths.home / "api" / "jobs" / job_id


def video_request(settings: Settings, job: Job) -> RenderRequest:
    data = job.request
    return RenderRequest(
        text=data["text"],
        avatar_id=data["avatar_id"],
        language=data["language"],
        output=job_folder(settings, job.id) / "video.mp4",
        voice=data.get("voice"),
        channel=data["channel"],
        purpose=data["purpose"],
        scene=data.get("scene"),
    )


class JobRunner:
    def __init__(self, store: JobStore, settings: Settings, metrics: Metrics) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(max_workers=settings.api.concurrent_renders, thread_name_prefix="dhf-job")
        self.futures: dict[str, Future] = {}
        self.lock = threading.Lock()
        self.frames: dict[str, tuple[int, int]] = {}  # running job → (frames done, total): the studio's live view
        self.cancelled: dict[str, str] = {}  # job → who cancelled it

    def cancel(self, job_id: str, who: str) -> None:
        """A queued job never starts; a running one stops at its next frame (JobCancelledError)."""
        with self.lock:
            self.cancelled[job_id] = who
            future = self.futures.get(job_id)
        job = self.store.get(job_id)
        if job is not None and job.status == "queued":
            if future is not None:
                future.cancel()
            self.store.fail(job_id, f"JobCancelledError: cancelled by {who} before it started")

    def resume(self) -> list[Job]:
        """Queue again the jobs a previous server process left unfinished."""
        resumed = self.store.recover()
        for job in resumed:
            self.submit(job)
        return resumed

    def submit(self, job: Job) -> Future:
        future = self.pool.submit(self._run, job.id)
        with self.lock:
            self.futures[job.id] = future
        return future

    def wait(self, job_id: str, timeout: float) -> bool:
        with self.lock:
            future = self.futures.get(job_id)
        if future is None:
            return False
        try:
            future.result(timeout=timeout)
        except TimeoutError:
            return False
        return True

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status not in ("queued",) or job_id in self.cancelled:
            return
        self.store.start(job_id)
        started = time.perf_counter()
        try:
            if job.kind == "video":
                self._run_video(job)
            else:
                self._run_batch(job)
        except Exception as exc:  # the job fails, the server goes on
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.store.fail(job_id, f"{type(exc).__name__}: {message}", _failure_result(exc))
        finally:
            self.frames.pop(job_id, None)
            self.metrics.observe(job.kind, time.perf_counter() - started)

    def _run_video(self, job: Job) -> None:
        request = video_request(self.settings, job)
        request.output.parent.mkdir(parents=True, exist_ok=True)
        last = [0.0]

        def on_frame(done: int, total: int) -> None:
            if job.id in self.cancelled:
                raise JobCancelledError(f"cancelled by {self.cancelled[job.id]} at frame {done} of {total}")
            self.frames[job.id] = (done, total)
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                self.store.progress(job.id, 0.9 * done / max(total, 1))  # the rest: quality gate, packaging

        settings = settings_with_options(self.settings, job.request.get("options"))
        # in this process, or a one-item batch on the work pool (`api.executor`): executor_for decides
        executor = executor_for(settings, entry="api")
        result = executor.render_request(request, settings, f"api-key:{job.key_id}", on_frame)
        video, report_path = result.video, result.report
        report = RenderReport.load(report_path)
        srt = output_paths(video)["srt"]
        self.store.finish(
            job.id,
            {
                "frames": report.frames,
                "duration_s": report.video.duration_s,
                "sha256": report.sha256,
                "content_id": report.provenance.content_id,
                "quality": {
                    "passed": report.quality.passed,
                    "lipsync": report.quality.lipsync.correlation,
                    "identity_max_distance": report.quality.identity.max_distance,
                },
                "license_id": report.license.license_id,
                # held for review: the files appear at these paths once a reviewer approves
                "review": {"id": report.review.id, "state": report.review.state} if report.review else None,
                "paths": {
                    "video": str(video),
                    "report": str(output_paths(video)["report"] if report.review else report_path),
                    "srt": str(srt) if srt.is_file() or (report.review and report.captions) else "",
                },
            },
        )

    def _run_batch(self, job: Job) -> None:
        folder = job_folder(self.settings, job.id)
        script = validate_script(folder / "script.yaml", self.settings)
        try:
            executor = executor_for(self.settings, entry="batch")  # the batch's videos: tasks in this process
            results = batch_flow(script, self.settings, folder / "out", executor, user=f"api-key:{job.key_id}")
        except BatchJobsFailedError as exc:
            rows = [JobResult.model_validate(row) for row in _manifest_rows(folder / "out" / script.name)]
            self.store.fail(job.id, str(exc).split("; see ")[0], {"videos": _public_rows(rows)})
            return
        self.store.finish(job.id, {"name": script.name, "videos": _public_rows(results)})


def _manifest_rows(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def settings_with_options(settings: Settings, options: dict | None) -> Settings:
    """Per-job overrides the API allows (only the quality fallback)."""
    fallback = (options or {}).get("quality_fallback")
    return settings.with_section("quality", fallback=fallback) if fallback else settings


def _public_rows(rows: list[JobResult]) -> list[dict]:
    keep = {
        "item",
        "language",
        "status",
        "sha256",
        "duration_s",
        "lipsync",
        "quality_passed",
        "license_id",
        "review",
        "error",
    }
    return [row.model_dump(include=keep) for row in rows]


def _failure_result(exc: Exception) -> dict | None:
    report = getattr(exc, "report_path", None)
    if not isinstance(exc, DhfError) or not report or not Path(report).is_file():
        return None
    quality = RenderReport.load(report).quality
    return {"quality": {"passed": quality.passed, "failures": quality.failures}}
