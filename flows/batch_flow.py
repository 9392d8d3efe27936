"""The factory's batch flow: one script → one video per item × language, watched in the Prefect UI.

- Outputs go to `<out>/<script>/<lang>/<item>.mp4` (+ report, captions, thumbnail) and a manifest
  (`manifest.json`, `manifest.csv`) with hashes, durations, quality scores and license ids.
- A job whose output already exists with the same inputs key is skipped: an unchanged script
  renders nothing, an edited answer re-renders exactly its languages, and a killed batch resumes
  (outputs are only ever renamed into place when complete).
- Each job is a Prefect task named `render q1 [zh]`; transient failures are retried with backoff,
  refusals and quality failures are not (they would fail again); one job's failure never stops the
  others: failures are listed at the end and the flow ends Failed if any occurred.
- The UI gets a progress artifact that advances per job, a thumbnail image artifact per video, and a
  table + Markdown summary at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from prefect import flow
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from config import Settings
from flows.executors import executor_for
from pipeline.batch_jobs import (
    JobResult,
    cached_result,
    current_avatar_version,
    job_key,
    write_manifest,
)
from pipeline.batch_script import BatchJob, BatchJobsFailedError, BatchScript


def _summary_markdown(script: BatchScript, results: list[JobResult]) -> str:
    lines = [
        f"### {script.name}: {len(results)} videos ({script.avatar}, {', '.join(script.languages)})",
        "",
        "| item | lang | status | duration s | lip-sync | identity | output |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.item} | {r.language} | {r.status} | {r.duration_s or ''} | {r.lipsync or ''} | "
            f"{r.identity_max_distance or ''} | `{r.output}` |"
        )
    failures = [r for r in results if r.status == "failed"]
    if failures:
        lines += ["", "**Failed:**"] + [f"- {r.item} [{r.language}]: {r.error}" for r in failures]
    return "\n".join(lines)


class BatchProgress(Protocol):
    """What a caller hears of a running batch (the CLI prints it; the UI has its own artifacts)."""

    def started(self, flow_run_id: str, total: int) -> None: ...

    def finished(self, result: JobResult) -> None: ...


@flow(
    name="render-batch",
    flow_run_name="batch {script.name}",
    log_prints=False,
    persist_result=False,
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def batch_flow(
    script: BatchScript,
    settings: Settings,
    out_root: Path,
    executor: Any = None,  # a flows.executors.FactoryExecutor; typed Any like on_progress
    user: str | None = None,
    on_progress: Any = None,  # a BatchProgress; typed Any: Prefect builds a schema of every parameter
) -> list[JobResult]:
    """Render every job not already rendered with the same inputs, with `executor` (from
    `flows.executors.executor_for(settings, entry="batch", pool=...)`; None: that without a pool):
    tasks in this process (one render at a time, so a machine is never oversubscribed), or runs on a
    work pool (flows/pool.py). `on_progress` hears where the run is in the UI and every finished
    video (`dhf batch` prints them)."""
    executor = executor or executor_for(settings, entry="batch")
    avatar_version = current_avatar_version(script, settings)
    total = len(script.jobs)
    if on_progress is not None:
        on_progress.started(str(flow_run.get_id() or ""), total)
    progress = create_progress_artifact(progress=0.0, description=f"{script.name}: videos done of {total}")
    results: list[JobResult] = []
    todo: list[tuple[BatchJob, str]] = []
    for job in script.jobs:
        key = job_key(script, job, settings, avatar_version)
        cached = cached_result(script, job, out_root, key, settings)
        if cached is not None:
            results.append(cached)
        else:
            todo.append((job, key))
    update_progress_artifact(progress, 100.0 * len(results) / max(total, 1))
    if on_progress is not None:
        for result in results:
            on_progress.finished(result)

    def finished(job: BatchJob, result: JobResult) -> None:
        results.append(result)
        update_progress_artifact(progress, 100.0 * len(results) / max(total, 1))
        if on_progress is not None:
            on_progress.finished(result)

    if todo:
        executor.render_jobs(script, settings, out_root, todo, finished, user)
    order = {(j.item_id, j.language): i for i, j in enumerate(script.jobs)}
    results.sort(key=lambda r: order[(r.item, r.language)])
    write_manifest(Path(out_root) / script.name, results)
    create_table_artifact(
        table=[r.model_dump() for r in results], key=_artifact_key(script.name), description="Batch results"
    )
    create_markdown_artifact(markdown=_summary_markdown(script, results), description=f"Batch {script.name}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise BatchJobsFailedError(
            f"{len(failed)} of {total} videos failed: "
            + "; ".join(f"{r.item} [{r.language}]: {r.error}" for r in failed[:5])
            + f"; see {Path(out_root) / script.name / 'manifest.json'}"
        )
    return results


def _artifact_key(name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "batch-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
