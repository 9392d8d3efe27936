"""`/v1/batches`: submit a batch script (checked before it is queued) and follow it."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter

from api.context import Context, Reader, Renderer, admit, own_job
from api.errors import ERRORS, ApiError
from api.runner import job_folder
from api.schemas import BatchCreate, JobAccepted, JobId, JobStatus
from pipeline.batch_script import BatchScriptError, validate_script

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("", status_code=202, response_model=JobAccepted, responses=ERRORS)
def create_batch(body: BatchCreate, key: Renderer, context: Context) -> JobAccepted:
    """Queue a batch script (every item in every language); checked before it is queued."""
    digest = hashlib.sha256(body.script.encode()).hexdigest()
    job = admit(context, key, "batch", {"script_sha256": digest})
    folder = job_folder(context.settings, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "script.yaml"
    script.write_text(body.script, encoding="utf-8")
    try:
        validate_script(script, context.settings)
    except BatchScriptError as exc:
        message = str(exc).replace(str(script), "script")
        context.jobs.fail(job.id, message)
        raise ApiError(exc.http_status, exc.code, message[:400]) from exc
    context.runner.submit(job)
    return JobAccepted(job_id=job.id, status="queued", links={"self": f"/v1/batches/{job.id}"})


@router.get("/{job_id}", response_model=JobStatus, responses=ERRORS)
def batch_status(job_id: JobId, key: Reader, context: Context) -> dict:
    return own_job(context, job_id, key, "batch").public()
