"""Prefect flow for one render: one task per stage, visible in the Prefect UI.

`dhf render` runs it only when a Prefect server is configured (PREFECT_API_URL); without one it runs
the same pipeline in process (`pipeline.run`), since a temporary server costs seconds and keeps no
records. Tasks do not use Prefect's result cache: every stage caches its own content-addressed
artifacts on disk, which also survives a killed run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from logging import Logger, LoggerAdapter
from typing import Any, TypeVar

import httpx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.states import State

from config import Settings
from config.errors import DhfError
from flows.batch_task import stage_timings
from flows.errors import Terminated
from flows.prefect_env import require_reachable, unavailable
from pipeline.chunk_runners import ChunkRunner
from pipeline.context import StageLog
from pipeline.request import ValidatedRequest
from pipeline.run import RenderResult, render_context, run_pipeline

T = TypeVar("T")


@dataclass(frozen=True)
class PrefectStages:
    """Each stage of a render as a Prefect task named "<stage> [<language>]" (one row per stage in the
    UI), timed into `log` and written to the flow's log. Tasks do not use Prefect's result cache (see
    the module's docstring)."""

    language: str
    log: StageLog
    logger: Logger | LoggerAdapter

    def run(self, name: str, stage: Callable[[], T]) -> T:
        started = time.perf_counter()
        label = f"{name} [{self.language}]"
        result = task(stage, name=label, task_run_name=label, cache_policy=NO_CACHE, persist_result=False)()
        self.logger.info(f"{name}: {self.log.record(name, started):.2f} s")
        return result


@flow(
    name="render-video",
    flow_run_name="render {validated.request.output.stem} [{validated.request.language}]",
    log_prints=False,
    persist_result=False,
)
def render_flow(
    validated: ValidatedRequest,
    settings: Settings,
    on_frame: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    wait_review: bool = False,
    chunks: Any = None,  # a ChunkRunner; typed Any because Prefect builds a schema of a flow's parameters
) -> RenderResult | State:
    """A State only for a rejected `wait_review` (`flows.review_flow.final_state`).
    `chunks` runs a long render's chunks (`flows.executors.executor_for` chose it; None: local processes)."""
    log = StageLog()
    logger = get_run_logger()
    request = validated.request
    logger.info(f"{validated.avatar.avatar_id} v{validated.avatar.version} [{request.language}] -> {request.output}")

    try:
        stages = PrefectStages(request.language, log, logger)
        context = render_context(validated, settings, stages, log, on_stage or (lambda name: None), on_frame, chunks)
        result = run_pipeline(context)
    except Exception as exc:  # the Logs tab says why the run failed (the tasks may all be green)
        logger.error(f"render failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        raise
    verdict = (
        f"held for review {result.review}: nothing is published until `dhf review approve {result.review}`"
        if result.review
        else f"quality passed; published {result.video}"
    )
    logger.info(f"{result.frames} frames; {verdict}; {stage_timings(log.timings)}")
    cached = ", ".join(name for name, hit in log.cache.items() if hit) or "none"
    create_markdown_artifact(
        key="render-summary",
        markdown=(
            f"### {validated.avatar.avatar_id} [{validated.request.language}]\n\n"
            f"- output: `{result.video}`\n- frames: {result.frames}\n- report: `{result.report}`\n"
            f"- {stage_timings(log.timings)}\n- from the cache: {cached}\n"
        ),
        description="Render summary",
    )
    if result.review and wait_review:  # the run is Held with a review form (flows/review_flow.py)
        from prefect.runtime import flow_run as this_run

        from flows.review_flow import final_state, wait_for_review

        (on_stage or (lambda name: None))(f"waiting for review {result.review}: {this_run.ui_url}")
        return final_state(result, wait_for_review(settings, result.review, logger))
    return result


def render_on_server(
    validated: ValidatedRequest,
    settings: Settings,
    url: str,
    on_frame: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    wait_review: bool = False,
    chunks: ChunkRunner | None = None,
) -> RenderResult:
    """The flow against the server at `url`, failing in one line if that server is down or stops
    answering (the caller set `flows.prefect_env.CLIENT_BOUNDS`, so each call gives up in ~18 s)."""
    require_reachable(url)  # a dead or hung server: one line in seconds, before any work
    try:
        # the final state, not the return value: a rejected review ends the run Failed ("Rejected")
        # with the render's result, which the caller still needs to say what was rejected
        state = render_flow(
            validated, settings, on_frame=on_frame, on_stage=on_stage, wait_review=wait_review, chunks=chunks,
            return_state=True,
        )  # fmt: skip
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            raise outcome
        if not isinstance(outcome, RenderResult):  # a state without a result (crashed, cancelled)
            raise RuntimeError(f"the render's flow run ended {state.name}: {state.message or 'no result'}")
        return outcome
    except DhfError:
        raise
    except TerminationSignal:
        # Prefect's own SIGTERM handler while the flow runs; it re-sends the signal to the CLI's handler
        # after marking the run Crashed, but that may land anywhere: say the same thing either way.
        raise Terminated("SIGTERM") from None
    except httpx.HTTPError as exc:  # includes Prefect's PrefectHTTPStatusError
        raise unavailable(url, f"failed during the render ({type(exc).__name__})") from exc
    except RuntimeError as exc:
        if "Failed to reach API" not in str(exc):  # Prefect's own words for a server gone mid-run
            raise
        raise unavailable(url, "stopped answering") from exc
