"""Where a render executes: the `Executor` interface and its in-process implementation.

Every entry point (the CLI, the API, batches) renders through an Executor it receives from
`flows.executors.executor_for`, the one place that looks at the settings (`chunking.executor`,
`api.executor`, the work pool) and the environment (PREFECT_API_URL). The implementations:

- `InProcessExecutor` (here): the stages run in this process; a long render's chunks run with the
  executor's `chunks` runner (local processes, or the refusal of `NoServerRunner`);
- flows/executors.py: the same, plus a batch's videos as Prefect tasks; a `render-video` flow run on
  the Prefect server; renders as flow runs on the work pool.

An executor renders a validated request (`render`: the caller holds the audit, as `dhf render` does
to validate before anything starts) or a request on behalf of a user (`render_request`: validated
and audited where it runs, as the API's and a batch's videos are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from config import Settings
from pipeline.auditing import audited_render
from pipeline.chunk_runners import ChunkRunner
from pipeline.request import RenderRequest, ValidatedRequest, validate_request
from pipeline.run import FrameHook, RenderResult, StageHook, render_validated


def _no_stage(name: str) -> None:
    """The stage hook of a caller that shows no progress."""


class Executor(Protocol):
    """Runs renders somewhere; `chunks` runs a long render's chunks for the renders it runs here."""

    @property
    def chunks(self) -> ChunkRunner | None: ...

    @property
    def waits_for_review(self) -> bool:
        """Whether `render(..., wait_review=True)` can pause for a reviewer (a flow run can)."""
        ...

    def render(
        self,
        validated: ValidatedRequest,
        settings: Settings,
        on_stage: StageHook = _no_stage,
        on_frame: FrameHook = None,
        wait_review: bool = False,
    ) -> RenderResult:
        """Every stage of an already validated request; the caller holds the audit."""
        ...

    def render_request(
        self, request: RenderRequest, settings: Settings, user: str | None = None, on_frame: FrameHook = None
    ) -> RenderResult:
        """Validate, audit under `user` (default: the OS user) and render, wherever the render runs."""
        ...


@dataclass(frozen=True)
class InProcessExecutor:
    """The stages in this process, each timed; a long render's chunks through `chunks` (None: the
    pipeline's own default, local processes: what a video rendered on a pool worker gets)."""

    chunks: ChunkRunner | None

    @property
    def waits_for_review(self) -> bool:
        return False

    def render(
        self,
        validated: ValidatedRequest,
        settings: Settings,
        on_stage: StageHook = _no_stage,
        on_frame: FrameHook = None,
        wait_review: bool = False,
    ) -> RenderResult:
        del wait_review  # nothing pauses in process: the review waits in the review store (`dhf review`)
        return render_validated(validated, settings, on_stage, on_frame, self.chunks)

    def render_request(
        self, request: RenderRequest, settings: Settings, user: str | None = None, on_frame: FrameHook = None
    ) -> RenderResult:
        """Validated once, inside the audit, then rendered here (every attempt, refused or not, is audited)."""
        with audited_render(request, settings, user) as attempt:
            attempt.validated = validate_request(request, settings, actor=attempt.user)
            result = self.render(attempt.validated, settings, on_frame=on_frame)
            attempt.report_path = result.report
        return result
