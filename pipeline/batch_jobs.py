"""One batch job (an item in one language) without any orchestrator: where its video goes, the key
that recognises it on a re-run, rendering it, and the manifest row read from its report.

`flows.batch_flow` runs these as Prefect tasks (in this process or on a work pool); the key and the
manifest rows are the same either way.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from avatars.library import AvatarLibrary
from config import Settings
from config.files import content_hash, write_text_atomic
from media.video import extract_frame
from pipeline.auditing import inputs_hash
from pipeline.batch_script import BatchJob, BatchScript
from pipeline.chunk_runners import ChunkRunner
from pipeline.executor import InProcessExecutor
from pipeline.report import BatchPart, RenderReport
from pipeline.request import RenderRequest, output_paths
from pipeline.review import attach_batch
from pipeline.review_store import ReviewStore


class JobResult(BaseModel):
    """A row of the batch manifest (`manifest.json`, `manifest.csv`), taken from the render's report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: str
    language: str
    status: str  # rendered | cached | failed | in review | rejected
    output: str
    sha256: str | None = None
    duration_s: float | None = None
    lipsync: float | None = None
    identity_max_distance: float | None = None
    quality_passed: bool | None = None
    license_id: str | None = None
    avatar_version: int | None = None
    scene: str | None = None  # the scene the video was rendered in (empty: the classic layout)
    shared_text: bool = False
    review: str = ""  # pending | approved | rejected when the script (or licence) requires human review
    review_id: str = ""
    error: str = ""

    @classmethod
    def from_report(cls, report: RenderReport, job: BatchJob, output: Path, status: str) -> JobResult:
        return cls(
            item=job.item_id,
            language=job.language,
            status=status,
            output=str(output),
            sha256=report.sha256,
            duration_s=report.video.duration_s,
            lipsync=report.quality.lipsync.correlation,
            identity_max_distance=report.quality.identity.max_distance,
            quality_passed=report.quality.passed,
            license_id=report.license.license_id,
            avatar_version=report.avatar.version,
            scene=report.scene.name if report.scene is not None else None,
            shared_text=job.shared_text,
            review=report.review.state if report.review else "",
            review_id=report.review.id if report.review else "",
        )


MANIFEST_FIELDS = tuple(JobResult.model_fields)


def job_output(out_root: Path, script: BatchScript, job: BatchJob) -> Path:
    return Path(out_root) / script.name / job.language / f"{job.item_id}.mp4"


def job_label(job: BatchJob) -> str:
    """The readable name of a job's task or flow run in the Prefect UI."""
    return f"render {job.item_id} [{job.language}]"


def job_request(script: BatchScript, job: BatchJob, output: Path) -> RenderRequest:
    return RenderRequest(
        text=job.text,
        avatar_id=script.avatar,
        language=job.language,
        output=output,
        voice=job.voice,
        channel=script.channel,
        purpose=script.purpose,
        scene=script.scene,
    )


def current_avatar_version(script: BatchScript, settings: Settings) -> int:
    return AvatarLibrary.from_settings(settings.paths).get(script.avatar).version


def job_key(script: BatchScript, job: BatchJob, settings: Settings, avatar_version: int) -> str:
    """Everything that decides a job's video; stored in its report to recognise it on a re-run."""
    request = job_request(script, job, Path("x.mp4"))
    return content_hash({"inputs": inputs_hash(request, settings), "avatar": [script.avatar, avatar_version]}, 32)


def job_report(output: Path) -> RenderReport:
    return RenderReport.load(output_paths(output)["report"])


def result_from_report(script: BatchScript, job: BatchJob, out_root: Path, status: str) -> JobResult:
    output = job_output(out_root, script, job)
    return JobResult.from_report(job_report(output), job, output, status)


def script_settings(script: BatchScript, settings: Settings) -> Settings:
    """The settings a script's videos render with: `review: required` in the script holds them all
    for human review (it can only add the requirement, never waive the settings' or a licence's)."""
    return settings.with_section("governance", review="required") if script.review else settings


def held_result(script: BatchScript, job: BatchJob, out_root: Path, key: str, settings: Settings) -> JobResult | None:
    """The job's row when its video, rendered from the same inputs, waits in review (not rendered again)."""
    output = job_output(out_root, script, job)
    for record in ReviewStore(settings).pending_for(output):
        try:
            report = RenderReport.load(Path(record.staged["report"]))
        except (OSError, ValidationError, KeyError):
            continue
        if report.batch_key == key:
            return JobResult.from_report(report, job, output, "in review")
    return None


def cached_result(
    script: BatchScript, job: BatchJob, out_root: Path, key: str, settings: Settings | None = None
) -> JobResult | None:
    """The job's result when its video exists and was rendered from the same inputs (key), or waits
    in review."""
    output = job_output(out_root, script, job)
    if not (output.is_file() and output_paths(output)["report"].is_file()):
        return held_result(script, job, out_root, key, settings) if settings is not None else None
    try:
        report = job_report(output)
    except (OSError, ValidationError):
        return None  # unreadable or from an older version: render again
    if report.batch_key != key:
        return None
    return JobResult.from_report(report, job, output, "cached")


def render_job_here(
    script: BatchScript,
    job: BatchJob,
    settings: Settings,
    out_root: Path,
    key: str,
    user: str | None = None,
    chunks: ChunkRunner | None = None,
) -> tuple[JobResult, Path | None]:
    """Render one job in this process (validated once, inside its audit; a long text's chunks through
    `chunks`, by default local processes); its report records the batch key. Returns the manifest row
    and a thumbnail of the video's middle frame (None if ffmpeg could not make one)."""
    output = job_output(out_root, script, job)
    output.parent.mkdir(parents=True, exist_ok=True)
    settings = script_settings(script, settings)
    rendered = InProcessExecutor(chunks).render_request(job_request(script, job, output), settings, user)
    batch = BatchPart(script=str(script.source), name=script.name, item=job.item_id, shared_text=job.shared_text)
    if rendered.review:  # held for a person: the report, video and thumbnail wait under hidden names
        report = RenderReport.load(rendered.report).model_copy(update={"batch_key": key, "batch": batch})
        record = attach_batch(settings, rendered.review, f"{script.name}/{job_label(job)}", report)
        thumbnail = Path(record.staged["thumbnail"]) if "thumbnail" in record.staged else None
        return JobResult.from_report(report, job, output, "in review"), thumbnail
    report = job_report(output).model_copy(update={"batch_key": key, "batch": batch})
    report.save(output_paths(output)["report"])
    thumbnail = output.with_suffix(".jpg")
    made = extract_frame(output, report.video.duration_s / 2, thumbnail)
    return JobResult.from_report(report, job, output, "rendered"), thumbnail if made else None


def failed_result(script: BatchScript, job: BatchJob, out_root: Path, error: str) -> JobResult:
    output = str(job_output(out_root, script, job))
    return JobResult(
        item=job.item_id, language=job.language, status="failed", output=output, shared_text=job.shared_text,
        error=error,
    )  # fmt: skip


def error_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def write_manifest(folder: Path, results: list[JobResult]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [result.model_dump() for result in results]
    json_path, csv_path = folder / "manifest.json", folder / "manifest.csv"
    write_text_atomic(json_path, json.dumps(rows, ensure_ascii=False, indent=2))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(csv_path, buffer.getvalue())
    return json_path, csv_path
