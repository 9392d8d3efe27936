"""A long render's chunks as flow runs on the Prefect work pool: one render, several machines.

Why flow runs (like the batch's renders, flows/pool.py): workers pick up flow runs, so each chunk is a
run of the `render-chunk/<pool>` deployment, executed by whichever worker polls first. The job
travels as JSON (pipeline.chunk_runners.job_to_json); its files (the motion track, the segment, the
result) live in the render's work folder beside the output, which the pool's machines share (as
they share the avatar library). The submitting render joins the segments, seals the video once
and runs the quality gate, so a chunked render is still one render: one content id, one audit
entry, one report.

A chunk whose worker died is resubmitted (`factory.resubmit_attempts`), a failed one fails the
render with its one-line reason. Deploy with `deploy_chunk_flow` (called by `dhf pool setup`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from uuid import UUID

from prefect import flow
from prefect.client.schemas.objects import State

from config import FactorySettings
from config.files import write_text_atomic
from flows.pool_runs import PoolClient, PoolRequest, PoolRuns, deploy_from_source, state_message
from pipeline.chunk_runners import ChunkJob, ChunkResult, job_from_json, job_to_json
from pipeline.chunked import render_chunk
from pipeline.chunks import ChunkingError

CHUNK_FLOW = "render-chunk"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def result_path(segment: Path) -> Path:
    return Path(segment).with_suffix(".result.json")


@flow(name=CHUNK_FLOW, log_prints=False, persist_result=False)
def render_chunk_run(job: str) -> int:
    """Render one chunk (a JSON job) on this worker; the result goes beside the segment."""
    chunk = job_from_json(job)
    result = render_chunk(chunk)
    write_text_atomic(result_path(chunk.segment), json.dumps(asdict(result)))
    return result.frames


def chunk_deployment_name(factory: FactorySettings) -> str:
    return f"{CHUNK_FLOW}/{factory.pool}"


def deploy_chunk_flow(factory: FactorySettings, project_root: Path = PROJECT_ROOT) -> UUID:
    """Create (or update) the chunk deployment on the work pool; idempotent like `setup_pool`."""
    return deploy_from_source(
        render_chunk_run,
        "flows/chunk_flow.py:render_chunk_run",
        factory,
        "dhf-chunk",
        "One chunk of a long dhf render (submitted by the render itself).",
        str(project_root),
    )


NO_SERVER = (
    "chunks on the work pool need a Prefect server; set PREFECT_API_URL (README: Scale-out) "
    "or use chunking.executor: local"
)


def flow_run_label() -> str:
    """The name the chunk runs are listed under in the UI: the submitting render's flow run name."""
    from prefect.runtime import flow_run

    return str(flow_run.get_name() or "render")


class PoolChunkRunner:
    """Chunks as flow runs on the work pool (`chunking.executor: pool`); a `ChunkRunner`. A chunk that
    fails fails the render (its other chunks are cancelled); the loop is flows/pool_runs.py."""

    def __init__(self, factory: FactorySettings, label: str | None = None, client: PoolClient | None = None) -> None:
        self.factory = factory
        self.label = label  # None: the submitting flow run's name, read when the chunks are submitted
        self.client = client

    def __call__(self, jobs: list[ChunkJob], progress: Callable[[int, int], None]) -> list[ChunkResult]:
        label, count = self.label or flow_run_label(), len(jobs)
        results: dict[int, ChunkResult] = {}

        def finished(job: ChunkJob, state: State) -> None:
            if not state.is_completed():
                message = state_message(state)[:300]
                raise ChunkingError(f"chunk {job.index + 1} (frames {job.start}-{job.stop}) {state.name}: {message}")
            result = ChunkResult(**json.loads(result_path(job.segment).read_text(encoding="utf-8")))
            results[job.index] = result
            progress(job.index, result.frames)

        request = PoolRequest(
            deployment=chunk_deployment_name(self.factory),
            kind="chunk",
            parameters=lambda job: {"job": job_to_json(job)},
            name=lambda job: f"{label} chunk {job.index + 1}/{count}",
            tags=("dhf", "dhf-chunk"),
            finished=finished,
            error=ChunkingError,
            no_server=NO_SERVER,
        )
        # a render waits on its chunks: poll at least every second (a batch polls at poll_seconds)
        PoolRuns(self.factory, self.client, min(self.factory.poll_seconds, 1.0)).run(request, jobs)
        return [results[job.index] for job in jobs]
