"""`dhf api`: serve the app with uvicorn (one process: the job runner lives in it)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from config import Settings
from flows.prefect_env import apply_offline_defaults


def serve(settings: Settings, host: str, port: int) -> None:
    apply_offline_defaults()  # batches run Prefect flows in this process
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
