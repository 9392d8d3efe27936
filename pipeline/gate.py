"""The quality gate of every render: judge the staged video, publish it only if it passes.

A render whose output breaks a threshold of `config/quality.yaml` is not published: the staged
video becomes `<name>.rejected.mp4` (report: `<name>.rejected.report.json`). When
`quality.fallback` says so, a safer version is rendered and, if it passes, published under the
requested name. Either way the pipeline then raises `QualityGateError`, so the CLI exits 4, the
audit entry says "failed" with the reason, and Prefect marks the flow failed in the UI.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config.errors import DhfError
from pipeline import chunked
from pipeline.context import RenderContext
from pipeline.report import FallbackPart
from pipeline.request import staging_path as staging_path  # its home is beside output_paths
from pipeline.stages import RenderInputs
from quality.errors import QualityGateError
from quality.inline import EncodeMonitor, judge_encoded
from quality.scores import QualityReport


def rejected_path(output: Path, tag: str = "rejected") -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.{tag}{output.suffix}")


def fallback_staging_path(staging: Path) -> Path:
    return staging.with_name(staging.name.replace(".pending", "-fallback.pending"))


@dataclass(frozen=True)
class Verdict:
    """What the gate decided: the scores, whether a video is to be published, and why not.

    Nothing is renamed while judging: `moves` (staged file → final name) are carried out together
    with the captions and the report in one locked publication step (pipeline.run)."""

    quality: QualityReport
    published: bool
    moves: tuple[tuple[Path, Path], ...]
    failure: str | None = None  # one line for the user when the requested render was not published
    rejected: Path | None = None
    fallback: FallbackPart | None = None


def _judged(
    context: RenderContext, name: str, staging: Path, tag: str, judge: Callable[[], QualityReport]
) -> tuple[QualityReport, Path]:
    """Judge the staged video with `judge` (what its monitor saw while it was encoded, confirmed
    against the encode), run as stage `name`: (scores, its final name: the output when it passes,
    otherwise `<output>.<tag>.mp4`). An error while judging moves it to the rejected name at once:
    never published unjudged, and kept for inspection."""
    output = context.output
    try:
        quality = context.run(name, judge)
    except DhfError as exc:
        # Rendered but not judgeable (no face in any frame, an encode unlike what was rendered): not
        # published, so a quality failure like any other (exit 4, "quality_failed"), not a bad request.
        rejected = rejected_path(output, tag)
        if staging.exists():
            os.replace(staging, rejected)
        raise QualityGateError(f"quality check failed: {exc}; the video was kept as {rejected}") from exc
    except BaseException:
        if staging.exists():
            os.replace(staging, rejected_path(output, tag))
        raise
    return quality, output if quality.passed else rejected_path(output, tag)


def quality_gate(context: RenderContext, inputs: RenderInputs, monitor: EncodeMonitor) -> Verdict:
    """Judge the staged render (`context.staging`, observed by `monitor` while it was encoded); on
    failure render the configured fallback from `inputs` into a second staging file (`<staging>`
    with a `-fallback` token), observed by a monitor of its own, and judge that."""
    output, staging, settings = context.output, context.staging, context.settings
    limits, spans = settings.quality, inputs.bilabial_spans
    quality, target = _judged(
        context, "quality", staging, "rejected", lambda: judge_encoded(monitor, staging, limits, spans)
    )
    moves = [(staging, target)]
    if target == output:
        return Verdict(quality, published=True, moves=tuple(moves))
    failure = f"quality check failed: {'; '.join(quality.failures)}; the video was kept as {target}"
    fallback = settings.quality.fallback
    if fallback == "none":
        return Verdict(quality, published=False, moves=tuple(moves), failure=failure, rejected=target)
    context.on_stage("fallback")
    second = fallback_staging_path(staging)
    try:
        watcher = monitor.fresh()
        # rendered like the render itself: a long text in chunks, by the render's chunk runner
        job = context.job(inputs, second, watcher, fallback)
        context.run("fallback", lambda: chunked.render_stage(job, context.chunk_runner))
        still = fallback == "still"
        again, target_again = _judged(
            context, "fallback-quality", second, "fallback-rejected",
            lambda: judge_encoded(watcher, second, limits, spans, still),
        )  # fmt: skip
    except BaseException:
        os.replace(staging, target)  # the first verdict stands: keep the rejected video
        raise
    moves.append((second, target_again))
    published = target_again == output
    fallback_part = FallbackPart(
        kind=fallback,
        quality=again,
        published=published,
        rejected=None if published else str(target_again),
    )
    if published:
        failure += f"; published the '{fallback}' fallback at {output}"
    else:
        failure += f"; the '{fallback}' fallback failed too ({'; '.join(again.failures)})"
    return Verdict(quality, published, tuple(moves), failure, target, fallback_part)
