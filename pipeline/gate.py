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
from typing import Any

from config import Settings
from config.errors import DhfError
from pipeline import stages
from pipeline.report import FallbackPart
from pipeline.request import ValidatedRequest
from quality.errors import QualityGateError
from quality.inline import EncodeMonitor, judge_encoded
from quality.scores import QualityReport

StageCall = Callable[..., Any]


def rejected_path(output: Path, tag: str = "rejected") -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.{tag}{output.suffix}")


def staging_path(output: Path, token: str) -> Path:
    """Where one render is encoded before it is judged: hidden, beside the output (same file system),
    and unique to the render (`token`), so two renders to the same output never share a file."""
    output = Path(output)
    return output.with_name(f".{output.stem}.{token}.pending{output.suffix}")


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


def _judged(call: StageCall, name: str, staging: Path, output: Path, tag: str, judge_args: tuple):
    """Judge the staged video (what its monitor saw while it was encoded, confirmed against the
    encode): (scores, its final name: the output when it passes, otherwise `<output>.<tag>.mp4`).
    An error while judging moves it to the rejected name at once: never published unjudged, and
    kept for inspection."""
    monitor, *rest = judge_args
    try:
        quality = call(name, judge_encoded, monitor, staging, *rest)
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


def quality_gate(
    validated: ValidatedRequest,
    settings: Settings,
    call: StageCall,
    on_stage: Callable[[str], None],
    on_frame,
    render_inputs: tuple,
    spans: list[tuple[float, float]] | None,
    staging: Path,
    monitor: EncodeMonitor,
) -> Verdict:
    """Judge the staged render (observed by `monitor` while it was encoded); on failure render the
    configured fallback into a second staging file (`<staging>` with a `-fallback` token), observed
    by a monitor of its own, and judge that."""
    output = Path(validated.request.output)
    limits = settings.quality
    quality, target = _judged(call, "quality", staging, output, "rejected", (monitor, limits, spans))
    moves = [(staging, target)]
    if target == output:
        return Verdict(quality, published=True, moves=tuple(moves))
    failure = f"quality check failed: {'; '.join(quality.failures)}; the video was kept as {target}"
    fallback = settings.quality.fallback
    if fallback == "none":
        return Verdict(quality, published=False, moves=tuple(moves), failure=failure, rejected=target)
    on_stage("fallback")
    second = fallback_staging_path(staging)
    try:
        watcher = monitor.fresh()
        call("fallback", stages.render_stage, validated, *render_inputs, settings, on_frame, fallback, second, watcher)
        still = fallback == "still"
        again, target_again = _judged(
            call, "fallback-quality", second, output, "fallback-rejected", (watcher, limits, spans, still)
        )
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
