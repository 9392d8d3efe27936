"""Runs the API's jobs in this process: a thread pool of `api.concurrent_renders` renders.

Each video job is `render_video` (the same pipeline, quality gate, marks and audit as the CLI; the
audit's user is `api-key:<id>`), writing into `<home>/api/jobs/<job id>/`. Batch jobs run the batch
flow into `<home>/api/jobs/<job id>/out/`. Progress goes to the job store as frames render.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings
from flows.api.jobs import Job, JobStore
from flows.stages import RenderRequest

PROGRESS_EVERY_S = 0.5


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
    )


@dataclass
class Metrics:
    """Counters for /metrics that are not in the job store (per process)."""

    durations: dict[str, list[float]] = field(default_factory=lambda: {"video": [], "batch": []})
    requests: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.durations.setdefault(kind, []).append(seconds)

    def count_response(self, status: int) -> None:
        with self.lock:
            self.requests[status] = self.requests.get(status, 0) + 1


class JobRunner:
    def __init__(self, store: JobStore, settings: Settings, metrics: Metrics) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(max_workers=settings.api.concurrent_renders, thread_name_prefix="dhf-job")
        self.futures: dict[str, Future] = {}

    def resume(self) -> list[Job]:
        """Queue again the jobs a previous server process left unfinished."""
        resumed = self.store.recover()
        for job in resumed:
            self.submit(job)
        return resumed

    def submit(self, job: Job) -> Future:
        future = self.pool.submit(self._run, job.id)
        self.futures[job.id] = future
        return future

    def wait(self, job_id: str, timeout: float) -> bool:
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
        if job is None or job.status not in ("queued",):
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
            self.metrics.observe(job.kind, time.perf_counter() - started)

    def _run_video(self, job: Job) -> None:
        from flows.pipeline import render_video

        request = video_request(self.settings, job)
        request.output.parent.mkdir(parents=True, exist_ok=True)
        last = [0.0]

        def on_frame(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                self.store.progress(job.id, 0.9 * done / max(total, 1))  # the rest: quality gate, packaging

        settings = settings_with_options(self.settings, job.request.get("options"))
        if settings.api.executor == "pool":
            video, report_path, frames = self._render_on_pool(job, request, settings)
        else:
            result = render_video(request, settings, on_frame=on_frame, user=f"api-key:{job.key_id}")
            video, report_path, frames = result.video, result.report, result.frames
        report = json.loads(report_path.read_text(encoding="utf-8"))
        quality = report.get("quality") or {}
        self.store.finish(
            job.id,
            {
                "frames": frames,
                "duration_s": (report.get("video") or {}).get("duration_s"),
                "sha256": report.get("sha256"),
                "content_id": (report.get("provenance") or {}).get("content_id"),
                "quality": {
                    "passed": quality.get("passed"),
                    "lipsync": (quality.get("lipsync") or {}).get("correlation"),
                    "identity_max_distance": (quality.get("identity") or {}).get("max_distance"),
                },
                "license_id": (report.get("license") or {}).get("license_id"),
                "paths": {
                    "video": str(video),
                    "report": str(report_path),
                    "srt": str(video.with_suffix(".srt")) if video.with_suffix(".srt").is_file() else "",
                },
            },
        )

    def _render_on_pool(self, job: Job, request: RenderRequest, settings: Settings) -> tuple[Path, Path, int]:
        """The video as a one-item batch on the work pool: a worker renders it (visible in the Prefect
        UI as `render video [<lang>]`), the result is read from the shared storage."""
        from avatars.library import AvatarLibrary
        from flows.batch_flow import job_key, job_output
        from flows.batch_script import BatchJob, BatchScript
        from flows.pool import PoolRun
        from flows.stages import validate_request

        voice = validate_request(request, settings).voice.name
        one = BatchJob("video", request.language, voice, request.text, False)
        script = BatchScript(f"api-{job.id}", request.avatar_id, (request.language,), request.channel,
                             request.purpose, (one,), Path(f"api:{job.id}"))  # fmt: skip
        version = AvatarLibrary.from_settings(settings.paths).get(request.avatar_id).version
        folder = job_folder(settings, job.id)
        results = []
        PoolRun(script, settings, folder, f"api-key:{job.key_id}").run(
            [(one, job_key(script, one, settings, version))], lambda _, result: results.append(result)
        )
        if not results or results[0].status == "failed":
            raise RuntimeError(results[0].error if results else "the pool returned no result")
        video = job_output(folder, script, one)
        report = video.with_name(f"{video.stem}.report.json")
        return video, report, int(json.loads(report.read_text(encoding="utf-8")).get("frames") or 0)

    def _run_batch(self, job: Job) -> None:
        from flows.batch_flow import batch_flow
        from flows.batch_script import BatchJobsFailedError, validate_script

        folder = job_folder(self.settings, job.id)
        script = validate_script(folder / "script.yaml", self.settings)
        try:
            results = batch_flow(script, self.settings, folder / "out", user=f"api-key:{job.key_id}")
        except BatchJobsFailedError as exc:
            manifest = json.loads((folder / "out" / script.name / "manifest.json").read_text(encoding="utf-8"))
            self.store.fail(job.id, str(exc).split("; see ")[0], {"videos": _public_rows(manifest)})
            return
        rows = [r.__dict__ for r in results]
        self.store.finish(job.id, {"name": script.name, "videos": _public_rows(rows)})


def settings_with_options(settings: Settings, options: dict | None) -> Settings:
    """Per-job overrides the API allows (only the quality fallback)."""
    fallback = (options or {}).get("quality_fallback")
    if not fallback:
        return settings
    return dataclasses.replace(settings, quality=dataclasses.replace(settings.quality, fallback=fallback))


def _public_rows(rows: list[dict]) -> list[dict]:
    keep = ("item", "language", "status", "sha256", "duration_s", "lipsync", "quality_passed", "license_id", "error")
    return [{k: row.get(k) for k in keep} for row in rows]


def _failure_result(exc: Exception) -> dict | None:
    report = getattr(exc, "report_path", None)
    if report and Path(report).is_file():
        quality = json.loads(Path(report).read_text(encoding="utf-8")).get("quality") or {}
        return {"quality": {"passed": quality.get("passed"), "failures": quality.get("failures")}}
    return None
