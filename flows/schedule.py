"""Scheduled batches: `dhf serve scripts/*.yaml --cron "0 6 * * *"` serves one Prefect deployment per
script; each run re-reads and re-validates its script file, so an edited script is picked up at the
next run (and, thanks to content-addressed outputs, only what changed is rendered)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from config import load_settings


@flow(name="scheduled-batch", log_prints=False, persist_result=False)
def scheduled_batch(script_path: str, out_root: str, config_path: str | None = None) -> int:
    """One scheduled run: validate the script as it is now, then run the batch flow as a subflow."""
    from flows.batch_flow import batch_flow
    from flows.batch_script import validate_script

    settings = load_settings(Path(config_path) if config_path else None)
    script = validate_script(Path(script_path), settings)
    return len(batch_flow(script, settings, Path(out_root)))


def deployments(scripts: list[Path], cron: str, out_root: Path, config_path: Path | None):
    """One deployment per script, named after it, on the cron schedule."""
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
