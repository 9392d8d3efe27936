"""A long render's chunks as flow runs on the Prefect work pool: one render, several machines.

Why flow runs (like the batch's renders, flows/pool.py): workers pick up flow runs, so each chunk is a
run of the `render-chunk/<pool>` deployment, executed by whichever worker polls first. The job
travels as JSON (pipeline.chunked.job_to_json); its files (the motion track, the segment, the
result) live in the render's work folder beside the output, which the pool's machines share (as
they share the avatar library). The submitting render joins the segments, seals the video once
and runs the quality gate, so a chunked render is still one render: one content id, one audit
entry, one report.

A chunk whose worker died is resubmitted (`factory.resubmit_attempts`), a failed one fails the
render with its one-line reason. Deploy with `deploy_chunk_flow` (called by `dhf pool setup`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings
from prefect.states import Cancelled

from config import FactorySettings
from config.files import write_text_atomic
from flows.pool import flow_run_states
from flows.prefect_env import OFFLINE_DEFAULTS
from pipeline.chunked import ChunkJob, ChunkResult, job_from_json, job_to_json, render_chunk
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
    heartbeat = factory.heartbeat_seconds  # like render runs: the crash automation can watch chunks too
    source = render_chunk_run.from_source(source=str(project_root), entrypoint="flows/chunk_flow.py:render_chunk_run")
    deployment_id = source.deploy(
        name=factory.pool,
        work_pool_name=factory.pool,
        job_variables={"env": {**OFFLINE_DEFAULTS, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat)}},
        tags=["dhf", "dhf-chunk"],
        description="One chunk of a long dhf render (submitted by the render itself).",
        print_next_steps=False,
        ignore_warnings=True,
        build=False,
        push=False,
    )
    return UUID(str(deployment_id))


@dataclass
class _Submitted:
    job: ChunkJob
    flow_run_id: UUID
    attempt: int
    submitted_at: float


class PoolChunkRunner:
    """Chunks as flow runs on the work pool (`chunking.executor: pool`); a `pipeline.chunked.ChunkRunner`."""

    def __init__(self, factory: FactorySettings, label: str = "render") -> None:
        self.factory = factory
        self.label = label

    def __call__(self, jobs: list[ChunkJob], progress: Callable[[int, int], None]) -> list[ChunkResult]:
        if not get_current_settings().api.url:
            raise ChunkingError(
                "chunks on the work pool need a Prefect server; set PREFECT_API_URL (README: Scale-out) "
                "or use chunking.executor: local"
            )
        self._check_deployment()
        results: dict[int, ChunkResult] = {}
        waiting = [self._submit(job, len(jobs), 1) for job in jobs]
        try:
            while waiting:
                time.sleep(min(self.factory.poll_seconds, 1.0))
                waiting = self._poll(waiting, len(jobs), results, progress)
        except BaseException:
            self._cancel(waiting)
            raise
        return [results[job.index] for job in jobs]

    def _check_deployment(self) -> None:
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name(chunk_deployment_name(self.factory))
            except ObjectNotFound as exc:
                raise ChunkingError(
                    f"work pool '{self.factory.pool}' has no chunk deployment on this server; "
                    "run `dhf pool setup` again (README: Scale-out)"
                ) from exc

    def _submit(self, job: ChunkJob, count: int, attempt: int) -> _Submitted:
        suffix = "" if attempt == 1 else f" (attempt {attempt})"
        run = run_deployment(
            chunk_deployment_name(self.factory),
            parameters={"job": job_to_json(job)},
            flow_run_name=f"{self.label} chunk {job.index + 1}/{count}{suffix}",
            timeout=0,
            tags=["dhf", "dhf-chunk"],
        )
        return _Submitted(job, run.id, attempt, time.monotonic())

    def _poll(
        self, waiting: list[_Submitted], count: int, results: dict[int, ChunkResult], progress
    ) -> list[_Submitted]:
        states = flow_run_states([s.flow_run_id for s in waiting])
        still: list[_Submitted] = []
        for submitted in waiting:
            state = states.get(submitted.flow_run_id)
            if state is None or not state.is_final():
                still.append(submitted)
                continue
            job = submitted.job
            if state.is_completed():
                result = ChunkResult(**json.loads(result_path(job.segment).read_text(encoding="utf-8")))
                results[job.index] = result
                progress(job.index, result.frames)
            elif state.is_crashed() and submitted.attempt <= self.factory.resubmit_attempts:
                still.append(self._submit(job, count, submitted.attempt + 1))
            else:
                message = (state.message or state.name or "failed").strip().splitlines()[0][:300]
                raise ChunkingError(f"chunk {job.index + 1} (frames {job.start}-{job.stop}) {state.name}: {message}")
        return still

    @staticmethod
    def _cancel(waiting: list[_Submitted]) -> None:
        """The render failed or was interrupted: its other chunks would render for nothing."""
        with get_client(sync_client=True) as client:
            for submitted in waiting:
                try:
                    client.set_flow_run_state(submitted.flow_run_id, Cancelled(message="render stopped"), force=True)
                except Exception:  # best effort: the render's own error is what the user needs
                    continue
