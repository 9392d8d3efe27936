"""Flow runs of one deployment on the work pool, followed to a final state: the one submit / poll /
resubmit loop, shared by a batch's renders (flows/pool.py) and a long render's chunks (flows/chunk_flow.py).

What it does for every run, whatever the run renders:
- Crashed (its worker or machine died; the crash automation of `dhf pool setup` marks a run silent for
  `factory.crashed_after_seconds` Crashed): submitted again, up to `factory.resubmit_attempts` times,
  named `<name> (attempt n)`;
- pending longer than `factory.pending_timeout_seconds` (claimed by a worker that never started it):
  marked Crashed, so the next poll resubmits it;
- still scheduled after that long: the pool must have a worker online, else the caller gets one line
  saying to start one (nothing polls the pool, so the wait would be endless);
- the caller stops (an error, Ctrl-C, a failed run it cannot go on without): its runs still waiting
  are cancelled, so no worker renders them for nobody.
Completed, failed and crashed-too-often runs go to the caller's `finished(item, state)`.

The server is reached through `PoolClient`; `PrefectPool` is Prefect's client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings
from prefect.states import Cancelled, Crashed

from config import FactorySettings
from config.errors import DhfError
from flows.prefect_env import OFFLINE_DEFAULTS

Item = TypeVar("Item")


class PoolClient(Protocol):
    """What the loop asks of the Prefect server."""

    def api_url(self) -> str | None: ...

    def has_deployment(self, name: str) -> bool: ...

    def submit(self, deployment: str, parameters: dict[str, Any], name: str, tags: list[str]) -> UUID: ...

    def states(self, ids: list[UUID]) -> dict[UUID, State | None]: ...

    def mark_crashed(self, flow_run_id: UUID, message: str) -> None: ...

    def cancel(self, flow_run_id: UUID, message: str) -> None: ...

    def online_workers(self, pool: str) -> int: ...


class PrefectPool:
    """`PoolClient` through Prefect's synchronous client (the server of PREFECT_API_URL)."""

    def api_url(self) -> str | None:
        return get_current_settings().api.url or None

    def has_deployment(self, name: str) -> bool:
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name(name)
            except ObjectNotFound:
                return False
        return True

    def submit(self, deployment: str, parameters: dict[str, Any], name: str, tags: list[str]) -> UUID:
        return run_deployment(deployment, parameters=parameters, flow_run_name=name, timeout=0, tags=tags).id

    def states(self, ids: list[UUID]) -> dict[UUID, State | None]:
        """The current state of each flow run, in one request (a run the server does not know is absent)."""
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        return {run.id: run.state for run in runs}

    def mark_crashed(self, flow_run_id: UUID, message: str) -> None:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)

    def cancel(self, flow_run_id: UUID, message: str) -> None:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)

    def online_workers(self, pool: str) -> int:
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(pool)
        return sum(str(getattr(w.status, "value", w.status)).upper() == "ONLINE" for w in workers)


@dataclass(frozen=True)
class PoolRequest(Generic[Item]):
    """One deployment's runs: what to submit for an item, and whom to tell when one is final."""

    deployment: str  # `<flow>/<pool>`
    kind: str  # "render" or "chunk": says which deployment is missing
    parameters: Callable[[Item], dict[str, Any]]
    name: Callable[[Item], str]
    tags: tuple[str, ...]
    finished: Callable[[Item, State], None]  # Completed, Failed, Cancelled or Crashed too often
    error: type[DhfError]  # the caller's error for a pool that cannot take the runs
    no_server: str  # the one line for a process without a Prefect server


@dataclass
class _Submitted(Generic[Item]):
    item: Item
    flow_run_id: UUID
    attempt: int
    submitted_at: float


class PoolRuns:
    """Submits items as flow runs of one deployment and follows them until each is final."""

    def __init__(
        self,
        factory: FactorySettings,
        client: PoolClient | None = None,
        poll_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.factory = factory
        self.client = client or PrefectPool()
        self.poll_seconds = factory.poll_seconds if poll_seconds is None else poll_seconds
        self.clock, self.sleep = clock, sleep  # a test's simulated time: timeouts without waiting

    def run(self, request: PoolRequest[Item], items: Iterable[Item]) -> None:
        """Submit every item, then poll until each run is final; `request.finished` hears each."""
        self.require_server(request)
        if not self.client.has_deployment(request.deployment):
            raise request.error(
                f"work pool '{self.factory.pool}' has no {request.kind} deployment on this server; "
                "run `dhf pool setup` (README: Scale-out)"
            )
        waiting: list[_Submitted[Item]] = []  # what is in flight, also when submitting fails half-way
        try:
            for item in items:
                waiting.append(self._submit(request, item, attempt=1))
            while waiting:
                self.sleep(self.poll_seconds)
                self._poll(request, waiting)
        except BaseException:
            self._cancel(waiting)
            raise

    def require_server(self, request: PoolRequest[Item]) -> str:
        """The API URL; a pool needs a real server that workers on other processes can reach."""
        url = self.client.api_url()
        if not url:
            raise request.error(request.no_server)
        return url

    def _submit(self, request: PoolRequest[Item], item: Item, attempt: int) -> _Submitted[Item]:
        suffix = "" if attempt == 1 else f" (attempt {attempt})"
        name = request.name(item) + suffix
        flow_run_id = self.client.submit(request.deployment, request.parameters(item), name, list(request.tags))
        return _Submitted(item, flow_run_id, attempt, self.clock())

    def _poll(self, request: PoolRequest[Item], waiting: list[_Submitted[Item]]) -> None:
        """One look at every run in flight; `waiting` is updated in place (a resubmitted run replaces
        its crashed one), so that it names what is in flight whatever `finished` raises."""
        states = self.client.states([s.flow_run_id for s in waiting])
        for submitted in list(waiting):
            state = states.get(submitted.flow_run_id)
            if state is None or not state.is_final():
                if state is not None and self._pending_too_long(submitted):
                    if state.is_pending():
                        self.client.mark_crashed(submitted.flow_run_id, "claimed by a worker that never started it")
                    elif state.is_scheduled():
                        self._require_online_worker(request)
                continue
            waiting.remove(submitted)
            if state.is_crashed() and submitted.attempt <= self.factory.resubmit_attempts:
                waiting.append(self._submit(request, submitted.item, submitted.attempt + 1))
            else:
                request.finished(submitted.item, state)

    def _pending_too_long(self, submitted: _Submitted[Item]) -> bool:
        return self.clock() - submitted.submitted_at > self.factory.pending_timeout_seconds

    def _require_online_worker(self, request: PoolRequest[Item]) -> None:
        if not self.client.online_workers(self.factory.pool):
            raise request.error(
                f"no worker is polling work pool '{self.factory.pool}' and {request.kind}s are waiting; "
                "start one with `dhf pool worker` (finished videos are kept; re-run to resume)"
            )

    def _cancel(self, waiting: list[_Submitted[Item]]) -> None:
        """The caller stopped: its runs not yet final would render for nothing. Best effort: the
        caller's own error is what the user needs."""
        try:
            states = self.client.states([s.flow_run_id for s in waiting]) if waiting else {}
        except Exception:
            return
        for submitted in waiting:
            state = states.get(submitted.flow_run_id)
            if state is not None and state.is_final():
                continue
            try:
                self.client.cancel(submitted.flow_run_id, "the submitter stopped")
            except Exception:
                continue


def state_message(state: State) -> str:
    """A final state's one line, without Prefect's own preamble."""
    message = (state.message or state.name or "failed").strip()
    for prefix in ("Flow run encountered an exception: ", "Flow run encountered an exception. "):
        message = message.removeprefix(prefix)
    return message.splitlines()[0] if message else str(state.name)


def deploy_from_source(
    flow: Any, entrypoint: str, factory: FactorySettings, tag: str, description: str, root: str
) -> UUID:
    """Create (or update) a deployment of `flow` (a flow of this repository, `entrypoint` relative to `root`)
    on the work pool, named after the pool; idempotent like `setup_pool`. Its runs get the offline defaults
    and the render runs' heartbeat, so the crash automation watches them too."""
    heartbeat = factory.heartbeat_seconds
    deployment_id = flow.from_source(source=root, entrypoint=entrypoint).deploy(
        name=factory.pool,
        work_pool_name=factory.pool,
        job_variables={"env": {**OFFLINE_DEFAULTS, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat)}},
        tags=["dhf", tag],
        description=description,
        print_next_steps=False,
        ignore_warnings=True,
        build=False,
        push=False,
    )
    return UUID(str(deployment_id))
