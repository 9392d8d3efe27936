"""What one render carries from stage to stage, and how a stage is run.

`RenderInputs` (what the frames are drawn from) is defined with the render stage, in pipeline.stages.

Why closures over a typed context rather than a `call(name, func, *args)` dispatch: a stage's inputs
are then named and typed where it is called, which a positional argument list hides from type
checkers and readers; the runner only decides where a stage runs (`TimedStages`: here, timed;
flows/render_flow.py `PrefectStages`: as a Prefect task named after the stage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from config import Settings
from pipeline.chunk_runners import ChunkRunner
from pipeline.request import ValidatedRequest
from pipeline.stages import RenderInputs, RenderJob
from quality.inline import EncodeMonitor

T = TypeVar("T")
StageHook = Callable[[str], None]
FrameHook = Callable[[int, int], None] | None


def _quiet(name: str) -> None:
    """The default stage hook: nobody is watching."""


class StageRunner(Protocol):
    """Runs one named stage of a render and returns its result (raising what it raises)."""

    def run(self, name: str, stage: Callable[[], T]) -> T: ...


@dataclass
class StageLog:
    """Timings and cache hits per stage, for the report."""

    timings: dict[str, float] = field(default_factory=dict)
    cache: dict[str, bool] = field(default_factory=dict)

    def record(self, name: str, started: float) -> float:
        """The stage `name` began at `started` (perf_counter) and has just ended: its seconds."""
        self.timings[name] = round(time.perf_counter() - started, 3)
        return self.timings[name]


@dataclass(frozen=True)
class TimedStages:
    """Every stage in this process, one after another, each timed into `log`."""

    log: StageLog

    def run(self, name: str, stage: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = stage()
        self.log.record(name, started)
        return result


@dataclass(frozen=True)
class RenderContext:
    """One render's request and surroundings, the same for every stage.

    `settings` are already the scene's (`Settings.for_scene`): every stage, chunk and worker renders
    on the scene's canvas. `staging` is the hidden file the render is encoded to before the gate
    judges it (pipeline.gate.staging_path). `chunk_runner`: None renders a long text's chunks as
    local processes."""

    validated: ValidatedRequest
    settings: Settings
    runner: StageRunner
    log: StageLog
    staging: Path
    on_stage: StageHook = _quiet
    on_frame: FrameHook = None
    chunk_runner: ChunkRunner | None = None

    @property
    def output(self) -> Path:
        return Path(self.validated.request.output)

    def run(self, name: str, stage: Callable[[], T]) -> T:
        """Stage `name` through this render's runner."""
        return self.runner.run(name, stage)

    def job(self, inputs: RenderInputs, target: Path, monitor: EncodeMonitor, mode: str = "normal") -> RenderJob:
        """One encode of this render's frames into `target`, watched by `monitor`."""
        return RenderJob(self.validated, self.settings, inputs, target, monitor, mode, self.on_frame)
