"""The one place that decides where renders execute (`executor_for`), and the executors that need
Prefect: a batch's videos as tasks of the batch flow, a render as a flow run on the Prefect server,
renders as flow runs on the work pool.

Why this module imports no Prefect at the top: `dhf render` without a server asks it for an executor
and must not pay for importing Prefect (~1 s, issue 16); each executor imports what it needs when it
runs. The interface and the in-process executor are pipeline/executor.py.

The decision (tests/test_executors.py walks the whole matrix), for each entry point:

| entry  | settings / argument             | PREFECT_API_URL | executor                 | its chunks          |
|--------|---------------------------------|-----------------|--------------------------|---------------------|
| render | chunking.executor: local        | unset           | in process               | local processes     |
| render | chunking.executor: pool         | unset           | in process               | refused: no server  |
| render | chunking.executor: local        | set             | flow run on the server   | local processes     |
| render | chunking.executor: pool         | set             | flow run on the server   | work-pool runs      |
| batch  | no pool                         | any             | tasks of the batch flow  | local processes     |
| batch  | pool (`dhf batch --pool NAME`)  | any (checked)   | work pool NAME           | each worker's own   |
| api    | api.executor: local             | any             | in process               | local processes     |
| api    | api.executor: pool              | any (checked)   | work pool factory.pool   | each worker's own   |

A batch's and the API's videos keep their chunks on the machine that renders them whatever
`chunking.executor` says: they are already spread over the pool's workers (or the API's threads).
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from config import Settings
from flows.prefect_env import apply_client_bounds, configured_api_url
from pipeline.batch_jobs import (
    JobResult,
    current_avatar_version,
    error_line,
    failed_result,
    job_key,
    job_output,
)
from pipeline.batch_script import BatchJob, BatchScript
from pipeline.chunk_runners import ChunkRunner, LocalRunner, NoServerRunner
from pipeline.chunks import worker_count
from pipeline.executor import Executor, InProcessExecutor
from pipeline.report import RenderReport
from pipeline.request import RenderRequest, ValidatedRequest, output_paths, validate_request
from pipeline.run import FrameHook, RenderResult, StageHook
from streaming.state import StreamState
from streaming.warm import WarmPool

Entry = Literal["render", "batch", "api"]
JobDone = Callable[[BatchJob, JobResult], None]


class FactoryExecutor(Executor, Protocol):
    """An `Executor` that also renders a batch's videos (`dhf batch`, the API's batch jobs)."""

    def render_jobs(
        self,
        script: BatchScript,
        settings: Settings,
        out_root: Path,
        jobs: list[tuple[BatchJob, str]],
        finished: JobDone,
        user: str | None = None,
    ) -> None:
        """Render `jobs` ((job, inputs key) pairs); `finished(job, result)` as each ends, failed or not."""
        ...


def executor_for(
    settings: Settings,
    environment: MutableMapping[str, str] | None = None,
    entry: Entry = "render",
    pool: str | None = None,
) -> FactoryExecutor:
    """Where `entry`'s renders execute, from the settings and the environment (default: this
    process's); `pool` is a batch's `--pool` (a work pool name). See the table above."""
    if entry == "api" and settings.api.executor == "pool":
        pool = pool or settings.factory.pool
    if pool is not None:
        return PoolExecutor(settings.with_section("factory", pool=pool))
    local = LocalRunner(worker_count(settings.chunking))
    if entry != "render":
        return TaskExecutor(local)
    url = configured_api_url(environment)
    wants_pool = settings.chunking.executor == "pool"
    if url is None:
        return TaskExecutor(NoServerRunner() if wants_pool else local)
    # before Prefect is imported: a server that stops answering fails in seconds (a value set wins)
    apply_client_bounds(os.environ if environment is None else environment)
    if wants_pool:
        from flows.chunk_flow import PoolChunkRunner  # imports Prefect: only with a server configured

        return ServerExecutor(PoolChunkRunner(settings.factory), url)
    return ServerExecutor(local, url)


@dataclass(frozen=True)
class TaskExecutor(InProcessExecutor):
    """In this process; a batch's videos are tasks of the batch flow (one at a time, retried when a
    transient error stops one; a refusal is not retried)."""

    def render_jobs(
        self,
        script: BatchScript,
        settings: Settings,
        out_root: Path,
        jobs: list[tuple[BatchJob, str]],
        finished: JobDone,
        user: str | None = None,
    ) -> None:
        from flows.batch_task import named_render_job  # imports Prefect

        futures = [
            (job, named_render_job(job).submit(script, job, settings, out_root, key, user, self.chunks))
            for job, key in jobs
        ]
        for job, future in futures:
            try:
                finished(job, future.result())
            except Exception as exc:  # one job's failure must not stop the batch
                finished(job, failed_result(script, job, out_root, error_line(exc)))


@dataclass(frozen=True)
class ServerExecutor(TaskExecutor):
    """`dhf render` with a Prefect server: a `render-video` flow run there (its stages as tasks in the
    UI), run by this process; a long render's chunks through `chunks` (work-pool runs or local)."""

    url: str = ""

    @property
    def waits_for_review(self) -> bool:
        return True

    def render(
        self,
        validated: ValidatedRequest,
        settings: Settings,
        on_stage: StageHook = lambda name: None,
        on_frame: FrameHook = None,
        wait_review: bool = False,
    ) -> RenderResult:
        from flows.render_flow import render_on_server  # imports Prefect (client bounds: see executor_for)

        return render_on_server(
            validated, settings, self.url, on_frame, on_stage, wait_review=wait_review, chunks=self.chunks
        )


@dataclass(frozen=True)
class PoolExecutor:
    """Renders as flow runs on the work pool `settings.factory.pool`, done by `dhf pool worker`s (which
    validate, audit and chunk where they run); this process submits and follows them."""

    settings: Settings

    @property
    def chunks(self) -> ChunkRunner:
        return LocalRunner(worker_count(self.settings.chunking))  # a worker renders its chunks itself

    @property
    def waits_for_review(self) -> bool:
        return False

    def render(
        self,
        validated: ValidatedRequest,
        settings: Settings,
        on_stage: StageHook = lambda name: None,
        on_frame: FrameHook = None,
        wait_review: bool = False,
    ) -> RenderResult:
        """The request on a worker, which validates and audits it again where it runs."""
        return self.render_request(validated.request, settings, validated.actor)

    def render_request(
        self, request: RenderRequest, settings: Settings, user: str | None = None, on_frame: FrameHook = None
    ) -> RenderResult:
        """The video as a one-item batch on the pool (in the Prefect UI as `render <name> [<lang>]`), named
        after the request's folder and rendered below it (`<folder>/<folder name>/<lang>/<name>.mp4`, the
        result's `video`); the result is read from the shared storage."""
        folder = request.output.parent
        voice = validate_request(request, settings).voice.name  # refused here, before any run is submitted
        one = BatchJob(request.output.stem, request.language, voice, request.text, False)
        script = BatchScript(folder.name, request.avatar_id, (request.language,), request.channel, request.purpose,
                             (one,), Path(f"request:{request.output}"), scene=request.scene)  # fmt: skip
        key = job_key(script, one, settings, current_avatar_version(script, settings))
        results: list[JobResult] = []
        self.render_jobs(script, settings, folder, [(one, key)], lambda _, result: results.append(result), user)
        if not results or results[0].status == "failed":
            raise RuntimeError(results[0].error if results else "the pool returned no result")
        video = job_output(folder, script, one)
        report = RenderReport.load(output_paths(video)["report"])
        srt = output_paths(video)["srt"]
        review = report.review.id if report.review else None
        return RenderResult(video, output_paths(video)["report"], srt if srt.is_file() else None, report.frames, review)

    def render_jobs(
        self,
        script: BatchScript,
        settings: Settings,
        out_root: Path,
        jobs: list[tuple[BatchJob, str]],
        finished: JobDone,
        user: str | None = None,
    ) -> None:
        from flows.pool import PoolRun  # imports Prefect

        pool_settings = settings.with_section("factory", pool=self.settings.factory.pool)
        PoolRun(script, pool_settings, out_root, user).run(jobs, finished)


StreamProducer = Callable[[Path, ValidatedRequest, Callable[[StreamState], None]], StreamState]


def stream_producer_for(settings: Settings) -> tuple[StreamProducer, WarmPool | None]:
    """What renders the API's streamed answers (`api.executor`), and the warm pool it keeps: `run_stream`
    in this process with one `WarmPool`, or a `render-stream` flow run on the work pool (None: its
    workers load their own). Imported here: a pool imports Prefect, the renderer its encoder and gate."""
    if settings.api.executor == "pool":
        from flows.stream_flow import PoolStreamProducer  # imports Prefect: only on the pool

        return PoolStreamProducer(settings), None
    from streaming.render import run_stream

    warm = WarmPool(settings)

    def produce(folder: Path, validated: ValidatedRequest, on_progress: Callable[[StreamState], None]) -> StreamState:
        return run_stream(folder, validated, settings, warm, on_progress)

    return produce, warm
