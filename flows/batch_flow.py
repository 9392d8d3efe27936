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

import csv
import io
import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from avatars.errors import AvatarError, LicenseError
from config import Settings
from config.files import content_hash, write_text_atomic
from flows.batch_script import BatchJob, BatchJobsFailedError, BatchScript
from flows.quality_stage import QualityGateError
from flows.stages import RenderRequest
from phoneme.errors import SpeechError

NOT_RETRIED = (AvatarError, LicenseError, SpeechError, QualityGateError)
MANIFEST_FIELDS = (
    "item",
    "language",
    "status",
    "output",
    "sha256",
    "duration_s",
    "lipsync",
    "identity_max_distance",
    "quality_passed",
    "license_id",
    "avatar_version",
    "shared_text",
    "error",
)


@dataclass(frozen=True)
class JobResult:
    item: str
    language: str
    status: str  # rendered | cached | failed
    output: str
    sha256: str | None = None
    duration_s: float | None = None
    lipsync: float | None = None
    identity_max_distance: float | None = None
    quality_passed: bool | None = None
    license_id: str | None = None
    avatar_version: int | None = None
    shared_text: bool = False
    error: str = ""


def job_output(out_root: Path, script: BatchScript, job: BatchJob) -> Path:
    return Path(out_root) / script.name / job.language / f"{job.item_id}.mp4"


def job_key(script: BatchScript, job: BatchJob, settings: Settings, avatar_version: int) -> str:
    """Everything that decides a job's video; stored in its report to recognise it on a re-run."""
    from flows.auditing import inputs_hash

    request = _request(script, job, Path("x.mp4"))
    return content_hash({"inputs": inputs_hash(request, settings), "avatar": [script.avatar, avatar_version]}, 32)


def _request(script: BatchScript, job: BatchJob, output: Path) -> RenderRequest:
    return RenderRequest(
        text=job.text,
        avatar_id=script.avatar,
        language=job.language,
        output=output,
        voice=job.voice,
        channel=script.channel,
        purpose=script.purpose,
    )


def _report_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.report.json")


def job_label(job: BatchJob) -> str:
    """The readable name of a job's task or flow run in the Prefect UI."""
    return f"render {job.item_id} [{job.language}]"


def result_from_report(script: BatchScript, job: BatchJob, out_root: Path, status: str) -> JobResult:
    output = job_output(out_root, script, job)
    report = json.loads(_report_path(output).read_text(encoding="utf-8"))
    quality = report.get("quality") or {}
    return JobResult(
        item=job.item_id,
        language=job.language,
        status=status,
        output=str(output),
        sha256=report.get("sha256"),
        duration_s=(report.get("video") or {}).get("duration_s"),
        lipsync=(quality.get("lipsync") or {}).get("correlation"),
        identity_max_distance=(quality.get("identity") or {}).get("max_distance"),
        quality_passed=quality.get("passed"),
        license_id=(report.get("license") or {}).get("license_id"),
        avatar_version=(report.get("avatar") or {}).get("version"),
        shared_text=job.shared_text,
    )


def cached_result(script: BatchScript, job: BatchJob, settings: Settings, out_root: Path, key: str) -> JobResult | None:
    output = job_output(out_root, script, job)
    report = _report_path(output)
    if not (output.is_file() and report.is_file()):
        return None
    try:
        if json.loads(report.read_text(encoding="utf-8")).get("batch_key") != key:
            return None
    except (OSError, json.JSONDecodeError):
        return None
    return result_from_report(script, job, out_root, "cached")


def _thumbnail(video: Path, duration: float) -> Path | None:
    """A 480 px JPEG of the middle frame, beside the video. ffmpeg seeks to it (decoding half the
    video to get there cost ~1 s per video, most of the batch's overhead)."""
    from fusion.frame_io import ffmpeg_binary

    target = video.with_suffix(".jpg")
    middle = duration / 2
    command = [ffmpeg_binary(), "-v", "error", "-y", "-ss", f"{middle:.3f}", "-i", str(video)]
    command += ["-frames:v", "1", "-vf", "scale=480:-2", "-q:v", "4", str(target)]
    return target if subprocess.run(command, capture_output=True).returncode == 0 and target.is_file() else None


def _retry_transient(task_, task_run, state) -> bool:
    """Retry crashes and I/O hiccups, not refusals or quality failures (they would fail again)."""
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
    script: BatchScript, job: BatchJob, settings: Settings, out_root: Path, key: str, user: str | None = None
) -> JobResult:
    from flows.pipeline import render_video

    output = job_output(out_root, script, job)
    output.parent.mkdir(parents=True, exist_ok=True)
    render_video(_request(script, job, output), settings, user=user)
    report_path = _report_path(output)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["batch_key"] = key
    report["batch"] = {
        "script": str(script.source),
        "name": script.name,
        "item": job.item_id,
        "shared_text": job.shared_text,
    }
    write_text_atomic(report_path, json.dumps(report, ensure_ascii=False, indent=2, default=str))
    thumbnail = _thumbnail(output, float((report.get("video") or {}).get("duration_s") or 0.0))
    if thumbnail is not None:
        create_image_artifact(image_url=thumbnail.resolve().as_uri(), description=f"{job.item_id} [{job.language}]")
    return result_from_report(script, job, out_root, "rendered")


def failed_result(script: BatchScript, job: BatchJob, out_root: Path, error: str) -> JobResult:
    output = str(job_output(out_root, script, job))
    return JobResult(job.item_id, job.language, "failed", output, shared_text=job.shared_text, error=error)


def _error_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def write_manifest(folder: Path, results: list[JobResult]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for r in results]
    json_path, csv_path = folder / "manifest.json", folder / "manifest.csv"
    write_text_atomic(json_path, json.dumps(rows, ensure_ascii=False, indent=2))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(csv_path, buffer.getvalue())
    return json_path, csv_path


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


@flow(
    name="render-batch",
    flow_run_name="batch {script.name}",
    log_prints=False,
    persist_result=False,
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def batch_flow(
    script: BatchScript, settings: Settings, out_root: Path, pool: str | None = None, user: str | None = None
) -> list[JobResult]:
    """Render every job not already rendered with the same inputs; in this process (one render at a
    time, so a machine is never oversubscribed), or on work pool `pool` (see flows/pool.py)."""
    from avatars.library import AvatarLibrary

    avatar_version = AvatarLibrary.from_settings(settings.paths).get(script.avatar).version
    total = len(script.jobs)
    progress = create_progress_artifact(progress=0.0, description=f"{script.name}: videos done of {total}")
    results: list[JobResult] = []
    todo: list[tuple[BatchJob, str]] = []
    for job in script.jobs:
        key = job_key(script, job, settings, avatar_version)
        cached = cached_result(script, job, settings, out_root, key)
        if cached is not None:
            results.append(cached)
        else:
            todo.append((job, key))
    update_progress_artifact(progress, 100.0 * len(results) / max(total, 1))

    def finished(job: BatchJob, result: JobResult) -> None:
        results.append(result)
        update_progress_artifact(progress, 100.0 * len(results) / max(total, 1))

    if pool is not None and todo:
        from dataclasses import replace

        from flows.pool import PoolRun

        pool_settings = replace(settings, factory=replace(settings.factory, pool=pool))
        PoolRun(script, pool_settings, out_root, user).run(todo, finished)
    else:
        _render_here(script, settings, out_root, todo, finished, user)
    order = {(j.item_id, j.language): i for i, j in enumerate(script.jobs)}
    results.sort(key=lambda r: order[(r.item, r.language)])
    write_manifest(Path(out_root) / script.name, results)
    create_table_artifact(
        table=[asdict(r) for r in results], key=_artifact_key(script.name), description="Batch results"
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


def _render_here(script: BatchScript, settings: Settings, out_root: Path, todo, finished, user=None) -> None:
    futures = [
        (job, render_job.with_options(name=job_label(job)).submit(script, job, settings, out_root, key, user))
        for job, key in todo
    ]
    for job, future in futures:
        try:
            finished(job, future.result())
        except Exception as exc:  # one job's failure must not stop the batch
            finished(job, failed_result(script, job, out_root, _error_line(exc)))


def _artifact_key(name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "batch-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
