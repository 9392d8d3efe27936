"""A streamed answer as a flow run on the work pool (`api.executor: pool`): a worker renders it into
the stream's folder on the shared storage while the API relays the released files.

Why the same folder contract as in-process streams (streaming/state.py): the API's serving code
does not care who writes `state.json` and the released playlists, so a stream on a worker is served
exactly like one in the API's process. The submitting API thread follows the run (flows/pool_runs.py:
crash resubmission, pending and worker checks) and, between its polls of the Prefect server, watches
`state.json` so that admission control hears the worker's progress and a client's cancel stops the
run (`on_progress` raises; the loop then cancels the flow run).

What a worker lacks: the API's warm pool (a process worker starts a fresh process per flow run), so
the first segment pays model loading there; measure before choosing the pool for latency-critical
answers. The worker validates and audits the request again where it runs, like pool renders.
Deploy with `deploy_stream_flow` (beside the render and chunk deployments of `dhf pool setup`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.client.schemas.objects import State

from config import FactorySettings, Settings
from flows.errors import PoolError
from flows.pool_runs import PoolClient, PoolRequest, PoolRuns, deploy_from_source, state_message
from pipeline.request import RenderRequest, ValidatedRequest, validate_request
from streaming.state import StreamState, read_state

STREAM_FLOW = "render-stream"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
WATCH_EVERY_S = 0.1  # how often the submitter reads the stream's state between its polls of the server
NO_SERVER = (
    "streams on the work pool need a Prefect server; set PREFECT_API_URL (README: Scale-out) or use api.executor: local"
)


def request_parameters(request: RenderRequest) -> dict[str, Any]:
    """The request as flow parameters (JSON): paths as strings."""
    data = asdict(request)
    return {name: str(value) if isinstance(value, Path) else value for name, value in data.items()}


@flow(name=STREAM_FLOW, log_prints=False, persist_result=False)
def render_stream_run(folder: str, request: dict[str, Any], settings: Settings, user: str) -> str:
    """Render one stream into `folder` (shared storage) on this worker; returns its final status."""
    from streaming.render import run_stream  # the renderer's models load in the worker only

    fields = {**request, "output": Path(request["output"])}
    if fields.get("driver_video"):
        fields["driver_video"] = Path(fields["driver_video"])
    validated = validate_request(RenderRequest(**fields), settings, actor=user)
    return run_stream(Path(folder), validated, settings).status


def stream_deployment_name(factory: FactorySettings) -> str:
    return f"{STREAM_FLOW}/{factory.pool}"


def deploy_stream_flow(factory: FactorySettings, project_root: Path = PROJECT_ROOT) -> UUID:
    """Create (or update) the stream deployment on the work pool; idempotent like `setup_pool`."""
    return deploy_from_source(
        render_stream_run,
        "flows/stream_flow.py:render_stream_run",
        factory,
        "dhf-stream",
        "One streamed answer of the dhf API (submitted by POST /v1/streams with api.executor: pool).",
        str(project_root),
    )


class StateWatcher:
    """Between polls of the server: reads `state.json` every WATCH_EVERY_S and hands each new state to
    `on_progress` (which raises to cancel). Used as the pool loop's `sleep`."""

    def __init__(self, folder: Path, on_progress: Callable[[StreamState], None]) -> None:
        self.folder, self.on_progress = Path(folder), on_progress
        self.last: StreamState | None = None

    def __call__(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            state = read_state(self.folder)
            if state is not None and state != self.last:
                self.last = state
                self.on_progress(state)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(WATCH_EVERY_S, left))


class PoolStreamProducer:
    """A `Producer` of api/streams.py: the stream as a flow run of `render-stream/<pool>`."""

    def __init__(self, settings: Settings, client: PoolClient | None = None) -> None:
        self.settings = settings
        self.client = client

    def __call__(
        self, folder: Path, validated: ValidatedRequest, on_progress: Callable[[StreamState], None]
    ) -> StreamState:
        factory = self.settings.factory

        def finished(item: Path, state: State) -> None:
            if not state.is_completed():
                raise PoolError(f"the stream's flow run ended {state.name}: {state_message(state)[:300]}")

        request = PoolRequest(
            deployment=stream_deployment_name(factory),
            kind="stream",
            parameters=lambda item: {
                "folder": str(item),
                "request": request_parameters(validated.request),
                "settings": self.settings,
                "user": validated.actor,
            },
            name=lambda item: f"stream {item.name[:8]} [{validated.request.language}]",
            tags=("dhf", "dhf-stream"),
            finished=finished,
            error=PoolError,
            no_server=NO_SERVER,
        )
        watcher = StateWatcher(folder, on_progress)
        # a stream is followed closely: the server at least every second, the folder every WATCH_EVERY_S
        PoolRuns(factory, self.client, min(factory.poll_seconds, 1.0), sleep=watcher).run(request, [Path(folder)])
        watcher(0)  # the final state, to the hook
        final = read_state(folder)
        if final is None:
            raise PoolError(f"the stream's flow run wrote no state into {folder}; check the worker's storage")
        return final
