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
from pipeline.batch_jobs import JobResult, render_job_here
from pipeline.batch_script import BatchJob, BatchScript
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
    held = f"; held for review {result.review_id} (dhf review approve {result.review_id})" if result.review_id else ""
    logger.info(
        f"{job.item_id} [{job.language}]: {result.status}, {result.duration_s} s of video, lip-sync "
        f"{result.lipsync}, identity {result.identity_max_distance}, quality passed {result.quality_passed}{held}"
    )
    if thumbnail is not None:
        create_image_artifact(image_url=image_data_url(thumbnail), description=f"{job.item_id} [{job.language}]")
    return result


def image_data_url(path: Path) -> str:
    """The thumbnail embedded in the artifact: a browser refuses `file://` images on an http page (the
    UI showed broken icons), and the UI may run on another machine than the render."""
    return "data:image/jpeg;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
