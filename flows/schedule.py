"""Scheduled batches: `dhf serve scripts/*.yaml --cron "0 6 * * *"` serves one Prefect deployment per
script; each run re-reads and re-validates its script file, so an edited script is picked up at the
next run (and, thanks to content-addressed outputs, only what changed is rendered)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, serve
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment

from config import ConfigError, load_settings
from flows.batch_flow import batch_flow
from pipeline.batch_script import validate_script


@flow(name="scheduled-batch", log_prints=False, persist_result=False)
def scheduled_batch(script_path: str, out_root: str, config_path: str | None = None) -> int:
    """One scheduled run: validate the script as it is now, then run the batch flow as a subflow."""
    settings = load_settings(Path(config_path) if config_path else None)
    script = validate_script(Path(script_path), settings)
    return len(batch_flow(script, settings, Path(out_root)))


def check_cron(cron: str) -> None:
    try:
        CronSchedule(cron=cron)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"--cron '{cron}' is not a cron expression; e.g. \"0 6 * * *\" for 06:00 daily") from exc


def deployments(scripts: list[Path], cron: str, out_root: Path, config_path: Path | None) -> list[RunnerDeployment]:
    """One deployment per script, named after it, on the cron schedule."""
    check_cron(cron)
    return [
        scheduled_batch.to_deployment(
            name=f"batch-{script.stem}",
            cron=cron,
            parameters={
                "script_path": str(script.resolve()),
                "out_root": str(out_root.resolve()),
                "config_path": str(config_path.resolve()) if config_path else None,
            },
            tags=["dhf", "batch"],
        )
        for script in scripts
    ]


def serve_deployments(served: list[RunnerDeployment]) -> None:
    """Serve the deployments in this process until interrupted (Ctrl-C stops serving)."""
    serve(*served)
