"""Scale-out: a batch's renders as flow runs on a Prefect work pool, executed by worker processes.

Why flow runs and not tasks: Prefect workers pick up *flow runs*; each render becomes one run of the
`render-variant/<pool>` deployment, a subflow of the batch flow in the UI, executed by whichever
worker polls first (processes on this machine, or other machines sharing the output and library
storage). The batch flow submits them, then follows their states:

- Completed: the result is read from the report the render wrote beside its video.
- Failed: the render's own task retries were spent, or it was refused; listed in the manifest.
- Crashed: its worker or machine died. Render runs send a heartbeat every `heartbeat_seconds`; the
  `dhf-crash-silent-renders` automation (created by `dhf pool setup`, Prefect's documented zombie
  detection) marks a run silent for `crashed_after_seconds` as Crashed, and the batch submits it
  again (up to `resubmit_attempts`). The killed render's finished stages are cached on disk, so the
  new run resumes; nothing half-written was ever published.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import State, StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectAlreadyExists

from config import FactorySettings, Settings
from flows.batch_task import named_render_job
from flows.errors import PoolError
from flows.pool_runs import PoolClient, PoolRequest, PoolRuns, PrefectPool, state_message
from flows.prefect_env import OFFLINE_DEFAULTS
from pipeline.batch_jobs import JobResult, failed_result, job_label, result_from_report
from pipeline.batch_script import BatchJob, BatchScript

FLOW_NAME = "render-variant"
AUTOMATION_NAME = "dhf-crash-silent-renders"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@flow(name=FLOW_NAME, log_prints=False, persist_result=False)
def render_variant(
    script: BatchScript, job: BatchJob, settings: Settings, out_root: Path, key: str, user: str | None = None
) -> str:
    """One video of a batch, run by a worker. Same task as a local batch, so retries behave the same.
    `user` is who asked (an API key id), for the audit log; default: the worker's OS user."""
    result = named_render_job(job)(script, job, settings, Path(out_root), key, user)
    return result.output


def deployment_name(factory: FactorySettings) -> str:
    return f"{FLOW_NAME}/{factory.pool}"


def flow_run_env(factory: FactorySettings) -> dict[str, str]:
    """Environment of every render run: heartbeats often enough for the crash automation."""
    return {**OFFLINE_DEFAULTS, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(factory.heartbeat_seconds)}


NO_SERVER = (
    "a work pool needs a Prefect server: start one (`prefect server start`) and set PREFECT_API_URL, "
    "e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api (README: Scale-out)"
)


def require_server() -> str:
    """The API URL; a pool needs a real server that workers on other processes can reach."""
    url = PrefectPool().api_url()
    if not url:
        raise PoolError(NO_SERVER)
    return url


@dataclass(frozen=True)
class PoolSetup:
    pool: str
    deployment_id: UUID
    automation: str


def setup_pool(factory: FactorySettings, project_root: Path = PROJECT_ROOT) -> PoolSetup:
    """Create (or update) the process work pool, the render deployment and the crash automation.

    Idempotent: run it again after changing `factory:` settings or upgrading the code."""
    require_server()
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=factory.pool, type="process"))
    source = render_variant.from_source(source=str(project_root), entrypoint="flows/pool.py:render_variant")
    deployment_id = source.deploy(
        name=factory.pool,
        work_pool_name=factory.pool,
        job_variables={"env": flow_run_env(factory)},
        tags=["dhf", "dhf-render"],
        description="One video of a dhf batch (submitted by `dhf batch --pool`).",
        print_next_steps=False,
        ignore_warnings=True,
        build=False,
        push=False,
    )
    _replace_crash_automation(factory, UUID(str(deployment_id)))
    return PoolSetup(factory.pool, UUID(str(deployment_id)), AUTOMATION_NAME)


def _replace_crash_automation(factory: FactorySettings, deployment_id: UUID) -> None:
    """Prefect's zombie detection, scoped to our render deployment: after a heartbeat, expect another
    heartbeat or a final state within `crashed_after_seconds`, else mark the run Crashed."""
    for _ in range(10):  # every earlier copy (a re-run of setup replaces it)
        try:
            Automation.read(name=AUTOMATION_NAME).delete()
        except ValueError:
            break
    Automation(
        name=AUTOMATION_NAME,
        description="dhf: a render whose worker stopped sending heartbeats is marked Crashed (then resubmitted)",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "deployment", "prefect.resource.id": f"prefect.deployment.{deployment_id}"}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=factory.crashed_after_seconds),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message="no heartbeat: the worker or its machine died")],
    ).create()


def worker_command(factory: FactorySettings, limit: int | None = None, name: str | None = None) -> list[str]:
    """`prefect worker start` for our pool, from this interpreter (so the worker sees this project)."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", factory.pool, "--type", "process"]
    command += ["--limit", str(limit or factory.renders_per_worker)]
    return command + (["--name", name] if name else [])


class PoolRun:
    """Submits one batch's renders to the pool and follows them to a final result per job (the loop
    itself, with crash resubmission and the pending and worker checks, is flows/pool_runs.py)."""

    def __init__(
        self,
        script: BatchScript,
        settings: Settings,
        out_root: Path,
        user: str | None = None,
        client: PoolClient | None = None,
    ) -> None:
        self.script = script
        self.settings = settings
        self.factory = settings.factory
        self.out_root = Path(out_root)
        self.user = user
        self.client = client

    def run(self, jobs: list[tuple[BatchJob, str]], on_result: Callable[[BatchJob, JobResult], None]) -> None:
        """Render `jobs` ((job, key) pairs) on the pool; `on_result(job, JobResult)` as each finishes."""

        def parameters(pair: tuple[BatchJob, str]) -> dict[str, Any]:
            job, key = pair
            return {"script": self.script, "job": job, "settings": self.settings, "out_root": self.out_root,
                    "key": key, "user": self.user}  # fmt: skip

        def finished(pair: tuple[BatchJob, str], state: State) -> None:
            job = pair[0]
            if state.is_completed():
                on_result(job, result_from_report(self.script, job, self.out_root, "rendered"))
            else:
                error = f"{state.name}: {state_message(state)}"[:300]
                on_result(job, failed_result(self.script, job, self.out_root, error))

        request = PoolRequest(
            deployment=deployment_name(self.factory),
            kind="render",
            parameters=parameters,
            name=lambda pair: job_label(pair[0]),
            tags=("dhf", "dhf-render"),
            finished=finished,
            error=PoolError,
            no_server=NO_SERVER,
        )
        PoolRuns(self.factory, self.client).run(request, jobs)
