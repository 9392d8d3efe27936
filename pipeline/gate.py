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
from pipeline import stages
from pipeline.report import FallbackPart
from pipeline.request import ValidatedRequest
from quality.evaluate import evaluate_against_avatar
from quality.scores import QualityReport

StageCall = Callable[..., Any]


def rejected_path(output: Path, tag: str = "rejected") -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.{tag}{output.suffix}")


def staging_path(output: Path) -> Path:
    """Where a render is encoded before it is judged: hidden, beside the output (same file system)."""
    output = Path(output)
    return output.with_name(f".{output.stem}.pending{output.suffix}")


@dataclass(frozen=True)
class Verdict:
    """What the gate decided: the scores, whether a video was published, and why not."""

    quality: QualityReport
    published: bool
    failure: str | None = None  # one line for the user when the requested render was not published
    rejected: Path | None = None
    fallback: FallbackPart | None = None


def _judged(call: StageCall, name: str, staging: Path, output: Path, tag: str, evaluate_args: tuple):
    """Evaluate the staged video; publish it (rename onto `output`) when it passes, otherwise move it
    to `<output>.<tag>.mp4`. Any error while judging also moves it away: never published unjudged."""
    try:
        quality = call(name, evaluate_against_avatar, staging, *evaluate_args)
    except BaseException:
        if staging.exists():
            os.replace(staging, rejected_path(output, tag))
        raise
    if quality.passed:
        os.replace(staging, output)
        return quality, None
    target = rejected_path(output, tag)
    os.replace(staging, target)
    return quality, target


def quality_gate(
    validated: ValidatedRequest,
    settings: Settings,
    call: StageCall,
    on_stage: Callable[[str], None],
    on_frame,
    render_inputs: tuple,
    spans: list[tuple[float, float]] | None,
    staging: Path,
) -> Verdict:
    """Judge the staged render; on failure render the configured fallback into the staging path and
    judge that."""
    output = Path(validated.request.output)
    avatar = validated.avatar
    quality, rejected = _judged(call, "quality", staging, output, "rejected", (avatar, settings, spans))
    if rejected is None:
        return Verdict(quality, published=True)
    failure = f"quality check failed: {'; '.join(quality.failures)}; the video was kept as {rejected}"
    fallback = settings.quality.fallback
    if fallback == "none":
        return Verdict(quality, published=False, failure=failure, rejected=rejected)
    on_stage("fallback")
    call("fallback", stages.render_stage, validated, *render_inputs, settings, on_frame, fallback, staging)
    still = fallback == "still"
    again, rejected_again = _judged(
        call, "fallback-quality", staging, output, "fallback-rejected", (avatar, settings, spans, still)
    )
    fallback_part = FallbackPart(
        kind=fallback,
        quality=again,
        published=rejected_again is None,
        rejected=str(rejected_again) if rejected_again else None,
    )
    if rejected_again is None:
        failure += f"; published the '{fallback}' fallback at {output}"
    else:
        failure += f"; the '{fallback}' fallback failed too ({'; '.join(again.failures)})"
    return Verdict(quality, rejected_again is None, failure, rejected, fallback_part)
