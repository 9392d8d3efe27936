"""Prefect flow for one render: one task per stage, visible in the Prefect UI.

Without PREFECT_API_URL the flow runs on Prefect's temporary local server; with it, against that
server (`prefect server start`). Tasks do not use Prefect's result cache: every stage caches its own
content-addressed artifacts on disk, which also survives a killed run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from config import Settings
from pipeline.request import ValidatedRequest
from pipeline.run import RenderResult, StageLog, run_pipeline


@flow(name="render-video", log_prints=False, persist_result=False)
def render_flow(
    validated: ValidatedRequest,
    settings: Settings,
    on_frame: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RenderResult:
    log = StageLog()

    def call(name: str, func, *args):
        start = time.perf_counter()
        stage = task(func, name=f"{name} [{validated.request.language}]", cache_policy=NO_CACHE, persist_result=False)
        result = stage(*args)
        log.timings[name] = round(time.perf_counter() - start, 3)
        return result

    result = run_pipeline(validated, settings, call, log, on_stage or (lambda name: None), on_frame)
    create_markdown_artifact(
        key="render-summary",
        markdown=(
            f"### {validated.avatar.avatar_id} [{validated.request.language}]\n\n"
            f"- output: `{result.video}`\n- frames: {result.frames}\n- report: `{result.report}`\n"
            f"- stage seconds: {log.timings}\n- cache hits: {log.cache}\n"
        ),
        description="Render summary",
    )
    return result
