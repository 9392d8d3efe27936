"""The Prefect task that renders one batch job, shared by the in-process batch and the pool's workers
(so retries behave the same wherever a video is rendered)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact
from prefect.cache_policies import NO_CACHE

from avatars.errors import AvatarError, LicenseError
from config import Settings
from phoneme.errors import SpeechError
from pipeline.batch_jobs import JobResult, job_label, render_job_here
from pipeline.batch_script import BatchJob, BatchScript
from pipeline.report import RenderReport
from pipeline.request import output_paths
from pipeline.review_store import ReviewStore
from quality.errors import QualityGateError

NOT_RETRIED = (AvatarError, LicenseError, SpeechError, QualityGateError)  # they would fail again


def _retry_transient(task_, task_run, state) -> bool:
    """Retry crashes and I/O hiccups, not refusals or quality failures."""
    try:
        state.result()
    except NOT_RETRIED:
        return False
    except Exception:
        return True
    return False


@task(
    # No tags: a tagged task asks the server for its tag's concurrency limit before it starts, and on
    # the SQLite-backed server that call often got a retryable 503 and waited ~1.8 s per video (the
    # batch overhead went from 9 % to 42 %). Caps are the worker's --limit and the work pool's limit.
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_transient,
)
def render_job(
    script: BatchScript,
    job: BatchJob,
    settings: Settings,
    out_root: Path,
    key: str,
    user: str | None = None,
    chunks: Any = None,  # a ChunkRunner (the batch's executor's); typed Any: Prefect builds a schema of it
) -> JobResult:
    logger = get_run_logger()
    try:
        result, thumbnail = render_job_here(script, job, settings, Path(out_root), key, user, chunks)
    except Exception as exc:  # the UI's Logs tab says why, not only the red state
        logger.error(f"{job.item_id} [{job.language}] failed: {str(exc).splitlines()[0] if str(exc) else exc!r}")
        raise
    logger.info(job_line(job, result, stage_seconds(result, settings)))
    if thumbnail is not None:
        create_image_artifact(image_url=image_data_url(thumbnail), description=f"{job.item_id} [{job.language}]")
    return result


def named_render_job(job: BatchJob):
    """`render_job` named `render q1 [zh]`, its task run too: without `task_run_name` Prefect names
    each run after the task plus a random suffix (`render q1 [zh]-cdc`), which nobody can search for."""
    label = job_label(job)
    return render_job.with_options(name=label, task_run_name=label)


def stage_seconds(result: JobResult, settings: Settings) -> dict[str, float]:
    """The stage timings the video's report recorded (a held video's report waits under its hidden
    name until the review decides); empty if there is no report to read."""
    path = output_paths(Path(result.output))["report"]
    if result.review_id:
        path = Path(ReviewStore(settings).get(result.review_id).staged.get("report", path))
    return RenderReport.load(path).stage_seconds if path.is_file() else {}


def job_line(job: BatchJob, result: JobResult, timings: dict[str, float]) -> str:
    """The task's log line in the UI: what came out, each measure by name, and where the time went."""
    quality = {True: "passed", False: "FAILED", None: "not measured"}[result.quality_passed]
    line = (
        f"{job_label(job).removeprefix('render ')}: {result.status}, {_shown(result.duration_s)} s of video, "
        f"lip-sync {_shown(result.lipsync)}, identity distance {_shown(result.identity_max_distance)}, "
        f"quality {quality}"
    )
    if timings:
        line += f"; {stage_timings(timings)}"
    if result.review_id:
        line += f"; held for review {result.review_id} (dhf review approve {result.review_id})"
    return line


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def stage_timings(timings: dict[str, float]) -> str:
    """`stages: speech 5.76 s, visemes 0.01 s, …, total 9.12 s`: readable, in the order they ran."""
    parts = [f"{name} {seconds:.2f} s" for name, seconds in timings.items()]
    return f"stages: {', '.join(parts)}, total {sum(timings.values()):.2f} s"


def image_data_url(path: Path) -> str:
    """The thumbnail embedded in the artifact: a browser refuses `file://` images on an http page (the
    UI showed broken icons), and the UI may run on another machine than the render."""
    return "data:image/jpeg;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
