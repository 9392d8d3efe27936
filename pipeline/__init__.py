"""The in-process render: request validation, the stage functions in order, the quality gate, the
typed report, the audit of every attempt, and batch scripts. No orchestrator: `flows/` wraps these
in Prefect tasks and flows; `pipeline.run.render_video` runs a whole render as plain Python."""
