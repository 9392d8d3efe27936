"""The production server for real (issue 15): Prefect on PostgreSQL, as README "Production server on
PostgreSQL" documents, with two `dhf pool worker` processes and a batch through the work pool.

PostgreSQL is the Debian package's (`apt-get install postgresql`, which `scripts/setup --test` does), started
here without its system service: `initdb` in a temporary folder and `pg_ctl start` on a free 127.0.0.1 port,
its unix socket in that folder, run as the unprivileged `postgres` user when the tests run as root (PostgreSQL
refuses to run as root).
The Prefect server gets PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://… (asyncpg comes with
Prefect); the workers and `dhf batch` know only PREFECT_API_URL, as in production. What the server stored is
then read back from PostgreSQL itself with psql: flow runs, their states, and which worker ran which render.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from flows.local_cluster import LocalCluster, free_port
from media.video import probe

CONFIG = "factory:\n  pool: pg-pool\n  poll_seconds: 1\n  worker_query_seconds: 1\n"
ITEMS = {
    "q1": "What is the rate on a one-year deposit?",
    "q2": "Please bring your bank card.",
    "q3": "Thank you, goodbye.",
}
RENDER_TEXT = "Your deposit is stored in PostgreSQL."
SCRIPT = "name: pg-batch\navatar: sample\nlanguages: [en]\nchannel: demo\npurpose: demo\nitems:\n" + "".join(
    f'  - id: {item}\n    text: "{text}"\n' for item, text in ITEMS.items()
)


def postgres_bindir() -> Path:
    """Where initdb and pg_ctl are: on PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        pytest.fail("PostgreSQL is not installed: run scripts/setup --test (apt-get install postgresql)")
    return Path(versions[-1]).parent


class LocalPostgres:
    """A throwaway PostgreSQL server: its own data folder, port and socket folder; no system service.

    Trust authentication, but only on 127.0.0.1 and the socket in a folder only its user can enter; fsync off
    (a test database: nothing to keep after a crash).
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # Not pytest's tmp_path: that is root's and closed to other users.
        self.root = Path(tempfile.mkdtemp(prefix="dhf-postgres-"))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.root, self.user)
        self.port = free_port()
        self.url = f"postgresql+asyncpg://prefect@127.0.0.1:{self.port}/prefect"

    def _run(self, *command: str, as_owner: bool = True) -> str:
        prefix = ["runuser", "-u", self.user, "--"] if as_owner and self.as_root else []
        done = subprocess.run([*prefix, *command], cwd=self.root, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def start(self) -> LocalPostgres:
        data = str(self.root / "data")
        self._run(str(self.bindir / "initdb"), "-D", data, "-U", "prefect", "-A", "trust", "-E", "UTF8", "--no-locale")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "postgres.log")
        self._run(str(self.bindir / "pg_ctl"), "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")
        self.query("CREATE DATABASE prefect", database="postgres")
        return self

    def query(self, sql: str, database: str = "prefect") -> list[list[str]]:
        """Rows as lists of text, through psql over TCP (what the Prefect server stored, not what it says)."""
        psql = [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "prefect", "-d", database]
        out = self._run(*psql, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql, as_owner=False)
        return [line.split("\t") for line in out.splitlines() if line]

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def postgres():
    server = LocalPostgres(postgres_bindir())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(postgres, dhf_home, tmp_path_factory):
    """`prefect server start` on PostgreSQL, with the work pool set up (workers come later)."""
    folder = tmp_path_factory.mktemp("pg-pool")
    config = folder / "pool.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    started = time.monotonic()
    with LocalCluster(folder, dhf_home, config, database_url=postgres.url).start(workers=0) as cluster:
        print(f"\nprefect server on postgres + pool setup: {time.monotonic() - started:.1f} s")
        yield cluster


@pytest.fixture(scope="module")
def pool_batch(cluster):
    """Two workers, then a 3-video batch submitted to the pool with `dhf batch --pool`."""
    for name in ("w1", "w2"):
        cluster.start_worker(name)
    _wait_for_workers(cluster, 2)
    script = cluster.folder / "script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    started = time.monotonic()
    batch = cluster.run("batch", str(script), "--out", str(cluster.folder / "out"), "--pool", timeout=480)
    print(f"\nbatch of {len(ITEMS)} on 2 workers: {time.monotonic() - started:.1f} s")
    assert batch.returncode == 0, batch.stderr[-3000:]
    manifest = json.loads((cluster.folder / "out" / "pg-batch" / "manifest.json").read_text())
    return manifest, cluster.api("flow_runs/filter")


def _wait_for_workers(cluster: LocalCluster, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        online = [w for w in cluster.api("work_pools/pg-pool/workers/filter") if w["status"] == "ONLINE"]
        if len(online) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{count} workers did not come online in {timeout:.0f} s")


def test_a_render_on_the_postgres_backed_server_is_stored_in_postgres(cluster, postgres):
    """The default run's share (~40 s): `dhf render` against the server; its flow run and task runs are rows."""
    output = cluster.folder / "render" / "answer.mp4"
    started = time.monotonic()
    done = cluster.run("render", RENDER_TEXT, "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet")
    print(f"\nrender through the postgres-backed server: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.with_suffix(".report.json").read_text())
    assert abs(probe(output).frames / 25 - report["speech"]["duration_s"]) <= 1 / 25 + 1e-6
    runs = postgres.query(
        "SELECT fr.id, fr.state_type FROM flow_run fr JOIN flow f ON f.id = fr.flow_id WHERE f.name = 'render-video'"
    )
    assert [state for _, state in runs] == ["COMPLETED"], runs
    tasks = postgres.query(f"SELECT name, state_type FROM task_run WHERE flow_run_id = '{runs[0][0]}'")
    assert len(tasks) >= 5 and {state for _, state in tasks} == {"COMPLETED"}, tasks
    assert not list((cluster.folder / "prefect-home").glob("*.db"))  # nothing went to SQLite


@pytest.mark.slow
def test_a_batch_runs_on_two_workers_of_a_postgres_backed_server(pool_batch, cluster):
    manifest, _ = pool_batch
    assert [(r["item"], r["status"], r["quality_passed"]) for r in manifest] == [
        (item, "rendered", True) for item in ITEMS
    ]
    for row in manifest:
        video = probe(Path(row["output"]))
        report = json.loads(Path(row["output"]).with_suffix(".report.json").read_text())
        assert abs(video.frames / 25 - report["speech"]["duration_s"]) <= 1 / 25 + 1e-6, row
        assert abs(video.duration - row["duration_s"]) < 0.1 and report["speech"]["words"] == len(
            ITEMS[row["item"]].split()
        )
    assert not list((cluster.folder / "prefect-home").glob("*.db"))  # nothing went to SQLite


@pytest.mark.slow
def test_the_flow_runs_are_in_postgres_and_both_workers_rendered(pool_batch, postgres):
    _, served = pool_batch
    stored = postgres.query(
        "SELECT fr.id, f.name, fr.name, fr.state_type, coalesce(s.message, '') FROM flow_run fr "
        "JOIN flow f ON f.id = fr.flow_id LEFT JOIN flow_run_state s ON s.id = fr.state_id ORDER BY fr.name"
    )
    renders = sorted((name, state) for _, flow, name, state, _ in stored if flow == "render-variant")
    assert renders == [(f"render {item} [en]", "COMPLETED") for item in ITEMS], stored
    assert [(name, state) for _, flow, name, state, _ in stored if flow == "render-batch"] == [
        ("batch pg-batch", "COMPLETED")
    ]
    assert sorted(run["id"] for run in served) == sorted(row[0] for row in stored)  # the API serves these rows
    # Which worker took which render: the workers' "submitted flow run" events, as stored.
    taken = postgres.query(
        "SELECT resource->>'prefect.resource.name', count(*) FROM events "
        "WHERE event = 'prefect.worker.submitted-flow-run' GROUP BY 1 ORDER BY 1"
    )
    assert [name for name, _ in taken] == ["w1", "w2"], taken
    assert sum(int(n) for _, n in taken) == len(ITEMS)
