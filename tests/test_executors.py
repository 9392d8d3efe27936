"""Where renders execute is decided in one place (`flows.executors.executor_for`), and both users of
the work pool (a batch's renders, a long render's chunks) follow their runs with one loop
(`flows.pool_runs.PoolRuns`): crash resubmission, the pending timeout, the online-worker check and
cancelling what is left when the submitter stops.

The loop is driven here by a scripted server (`ScriptedPool`: Prefect's own State objects, a clock
that advances when the loop sleeps); the real server, workers and a killed worker are in
tests/test_workpool.py and tests/test_chunked.py (slow suite)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from prefect.states import Cancelled, Completed, Crashed, Failed, Pending, Running, Scheduled

from config import FactorySettings, load_settings
from flows.chunk_flow import PoolChunkRunner, result_path
from flows.errors import PoolError
from flows.executors import PoolExecutor, ServerExecutor, TaskExecutor, executor_for
from flows.pool import PoolRun
from flows.pool_runs import PoolRequest, PoolRuns
from pipeline.batch_script import BatchJob, BatchScript
from pipeline.chunk_runners import ChunkJob, LocalRunner, NoServerRunner
from pipeline.chunks import ChunkingError

REPO = Path(__file__).resolve().parents[1]
URL = "http://127.0.0.1:4200/api"


# --- the one decision ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return load_settings(home=tmp_path_factory.mktemp("home"))


@pytest.mark.parametrize(
    ("entry", "chunking", "api", "pool", "url", "executor", "chunks"),
    [
        ("render", "local", "local", None, "", TaskExecutor, LocalRunner),
        ("render", "pool", "local", None, "", TaskExecutor, NoServerRunner),
        ("render", "local", "local", None, URL, ServerExecutor, LocalRunner),
        ("render", "pool", "local", None, URL, ServerExecutor, PoolChunkRunner),
        ("render", "pool", "pool", None, URL, ServerExecutor, PoolChunkRunner),  # api.executor is the API's
        ("batch", "pool", "local", None, URL, TaskExecutor, LocalRunner),  # a batch's videos chunk locally
        ("batch", "local", "local", None, "", TaskExecutor, LocalRunner),
        ("batch", "local", "local", "night", URL, PoolExecutor, LocalRunner),
        ("batch", "local", "local", "night", "", PoolExecutor, LocalRunner),  # no server: said when it runs
        ("api", "pool", "local", None, URL, TaskExecutor, LocalRunner),
        ("api", "local", "pool", None, URL, PoolExecutor, LocalRunner),
        ("api", "local", "pool", None, "", PoolExecutor, LocalRunner),
    ],
)
def test_the_executor_comes_from_the_settings_and_the_environment(
    settings, entry, chunking, api, pool, url, executor, chunks
):
    configured = settings.with_section("chunking", executor=chunking).with_section("api", executor=api)
    environment = {"PREFECT_API_URL": url}
    chosen = executor_for(configured, environment, entry, pool)
    assert type(chosen) is executor and type(chosen.chunks) is chunks, (chosen, chosen.chunks)
    if isinstance(chosen, ServerExecutor):
        assert chosen.url == URL and chosen.waits_for_review
        assert environment["PREFECT_API_REQUEST_TIMEOUT"]  # bounded before Prefect talks to the server
    if isinstance(chosen, PoolExecutor):
        assert chosen.settings.factory.pool == (pool or configured.factory.pool)


def test_no_other_module_decides_where_renders_execute():
    """The settings and the constructors that place a render are read only by flows/executors.py (the
    implementations' own modules construct them too). Adding an executor is one place."""
    decides = (".chunking.executor", ".api.executor", "PoolRun(", "PoolChunkRunner(", "NoServerRunner(",
               "LocalRunner(", "render_on_server(", "TaskExecutor(", "ServerExecutor(", "PoolExecutor(")  # fmt: skip
    allowed = {
        "flows/executors.py",  # the decision
        "pipeline/chunked.py",  # the default runner of a chunked render that is given none
        "pipeline/executor.py",  # the in-process implementation (docs name the others)
    }
    found = []
    for package in ("cli", "api", "flows", "pipeline", "governance", "quality", "avatars", "fusion"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            code = _code_without_docstrings(path)
            for needle in decides:
                named = re.search(("" if needle[0] == "." else r"(?<![\w.])") + re.escape(needle), code)
                if named and relative not in allowed and not _defines(relative, needle):
                    found.append(f"{relative}: {needle}")
    assert found == [], found


def _defines(relative: str, needle: str) -> bool:
    """A module may name what it defines (`class PoolRun:` and its own docstrings)."""
    owners = {"flows/pool.py": "PoolRun(", "flows/chunk_flow.py": "PoolChunkRunner(",
              "flows/render_flow.py": "render_on_server(",
              "pipeline/chunk_runners.py": ("LocalRunner(", "NoServerRunner(")}  # fmt: skip
    owned = owners.get(relative, ())
    return needle in (owned if isinstance(owned, tuple) else (owned,))


def _code_without_docstrings(path: Path) -> str:
    """The module's code and comments, without its docstrings (they may name anything)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                for number in range(body[0].lineno - 1, body[0].end_lineno):
                    lines[number] = ""
    return "\n".join(lines)


# --- the one pool loop ---------------------------------------------------------------------------------


class ScriptedPool:
    """A Prefect server as the loop sees it: each submitted run follows a script of states, one per
    poll; the last state stays. Records what the loop asked."""

    def __init__(self, scripts: dict[str, list], url: str | None = URL, deployed: bool = True, workers: int = 1):
        self.scripts, self.url, self.deployed, self.workers = scripts, url, deployed, workers
        self.runs: dict[UUID, list] = {}
        self.names: dict[UUID, str] = {}
        self.submitted: list[str] = []
        self.crashed: list[str] = []
        self.cancelled: list[str] = []
        self.polls = 0

    def api_url(self) -> str | None:
        return self.url

    def has_deployment(self, name: str) -> bool:
        return self.deployed

    def submit(self, deployment, parameters, name, tags) -> UUID:
        run = uuid4()
        self.runs[run], self.names[run] = list(self.scripts.get(name, [Completed()])), name
        self.submitted.append(name)
        return run

    def states(self, ids):
        self.polls += 1
        assert self.polls < 10_000, "the loop never ends"  # a hang would be a stuck test, not a failure
        answer = {}
        for run in ids:
            script = self.runs[run]
            answer[run] = script.pop(0) if len(script) > 1 else script[0]
        return answer

    def mark_crashed(self, flow_run_id, message):
        self.crashed.append(self.names[flow_run_id])
        self.runs[flow_run_id] = [Crashed(message=message)]

    def cancel(self, flow_run_id, message):
        self.cancelled.append(self.names[flow_run_id])

    def online_workers(self, pool):
        return self.workers


class Clock:
    """Simulated time: the loop's sleeps advance it, so a 300 s pending timeout takes no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _run(pool: ScriptedPool, items: list[str], factory: FactorySettings | None = None) -> list[tuple[str, str]]:
    finished: list[tuple[str, str]] = []

    def on_final(item: str, state) -> None:
        if state.is_failed():
            raise ChunkingError(f"{item} failed")  # like a chunk: the caller cannot go on
        finished.append((item, state.type.value))

    request = PoolRequest(deployment="render-x/p", kind="render", parameters=lambda item: {"item": item},
                          name=lambda item: item, tags=("dhf",), finished=on_final, error=PoolError,
                          no_server="no server here")  # fmt: skip
    clock = Clock()
    factory = factory or FactorySettings(pending_timeout_seconds=300, resubmit_attempts=2, poll_seconds=2)
    PoolRuns(factory, pool, clock=clock, sleep=clock.sleep).run(request, items)
    return finished


def test_a_crashed_run_is_resubmitted_until_its_attempts_are_spent():
    pool = ScriptedPool({"a": [Running(), Crashed()], "a (attempt 2)": [Crashed()], "b": [Running(), Completed()],
                         "c": [Crashed()], "c (attempt 2)": [Crashed()], "c (attempt 3)": [Crashed()]})  # fmt: skip
    finished = _run(pool, ["a", "b", "c"])
    assert sorted(finished) == [("a", "COMPLETED"), ("b", "COMPLETED"), ("c", "CRASHED")]
    assert sorted(pool.submitted) == ["a", "a (attempt 2)", "a (attempt 3)", "b", "c", "c (attempt 2)",
                                      "c (attempt 3)"]  # fmt: skip
    assert pool.cancelled == []


def test_a_run_claimed_but_never_started_is_marked_crashed_and_resubmitted():
    pool = ScriptedPool({"a": [Pending()]})  # pending for ever: the worker that claimed it never started it
    finished = _run(pool, ["a"])
    assert pool.crashed == ["a"] and pool.submitted == ["a", "a (attempt 2)"]
    assert finished == [("a", "COMPLETED")]


def test_runs_waiting_without_an_online_worker_fail_in_one_line_and_are_cancelled():
    pool = ScriptedPool({"a": [Scheduled()], "b": [Running(), Completed()]}, workers=0)
    with pytest.raises(PoolError, match="no worker is polling work pool 'dhf-render' and renders are waiting"):
        _run(pool, ["a", "b"])
    assert pool.cancelled == ["a"]  # b completed: its state stays


def test_a_failed_run_the_caller_cannot_go_on_without_cancels_the_others():
    pool = ScriptedPool({"a": [Failed(message="boom")], "b": [Running()], "c": [Completed()]})
    with pytest.raises(ChunkingError, match="a failed"):
        _run(pool, ["a", "b", "c"])
    assert pool.cancelled == ["b"]


def test_no_server_and_no_deployment_are_one_line_each():
    with pytest.raises(PoolError, match="no server here"):
        _run(ScriptedPool({}, url=None), ["a"])
    with pytest.raises(PoolError, match=r"work pool 'dhf-render' has no render deployment .*`dhf pool setup`"):
        _run(ScriptedPool({}, deployed=False), ["a"])


def test_the_chunk_runner_and_the_batch_share_the_loop(settings, tmp_path):
    """Both callers get the same behaviour: a crashed chunk is resubmitted like a crashed render, and a
    failed chunk fails the render (its other chunks cancelled) while a failed render is a manifest row."""
    factory = FactorySettings(poll_seconds=0.01)
    jobs = [ChunkJob(i, 10 * i, 10 * i + 10, "sample", 1, settings, tmp_path / "t.npz", tmp_path / f"c{i}.mp4", 7)
            for i in range(2)]  # fmt: skip
    for job in jobs:
        result_path(job.segment).write_text(json.dumps({"index": job.index, "frames": 10, "processors": ["r"],
            "reenact_seconds": 1.0, "watermark_seconds": 0.1, "seconds": 1.5, "peak_rss_mb": 300.0}))  # fmt: skip
    pool = ScriptedPool({"t chunk 1/2": [Running(), Crashed()], "t chunk 2/2": [Running(), Completed()]})
    done: list[tuple[int, int]] = []
    results = PoolChunkRunner(factory, "t", pool)(jobs, lambda index, frames: done.append((index, frames)))
    assert [r.index for r in results] == [0, 1] and sorted(done) == [(0, 10), (1, 10)]
    assert sorted(pool.submitted) == ["t chunk 1/2", "t chunk 1/2 (attempt 2)", "t chunk 2/2"]

    pool = ScriptedPool({"t chunk 1/2": [Failed(message="Flow run encountered an exception: out of memory")],
                         "t chunk 2/2": [Running()]})  # fmt: skip
    with pytest.raises(ChunkingError, match=r"chunk 1 \(frames 0-10\) Failed: out of memory"):
        PoolChunkRunner(factory, "t", pool)(jobs, lambda index, frames: None)
    assert pool.cancelled == ["t chunk 2/2"]

    script = BatchScript("s", "sample", ("en",), "demo", "demo", (BatchJob("q1", "en", "v", "Hi.", False),), tmp_path)
    pool = ScriptedPool({"render q1 [en]": [Crashed()], "render q1 [en] (attempt 2)": [Failed(message="refused")]})
    rows = []
    PoolRun(script, settings.with_section("factory", poll_seconds=0.01), tmp_path, client=pool).run(
        [(script.jobs[0], "key")], lambda job, row: rows.append(row)
    )
    assert pool.submitted == ["render q1 [en]", "render q1 [en] (attempt 2)"]
    assert [(r.item, r.status, r.error) for r in rows] == [("q1", "failed", "Failed: refused")]


def test_cancelled_runs_are_final_for_the_loop():
    assert _run(ScriptedPool({"a": [Cancelled()]}), ["a"]) == [("a", "CANCELLED")]
