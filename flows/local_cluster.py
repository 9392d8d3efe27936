"""A throwaway Prefect server and dhf render workers on this machine, each in its own process group.

Why here and not in the tests: the scale-out integration test and `scripts/bench_pool.py` both need
exactly this, and it is how to try the work pool on a laptop before setting up real machines
(README: Scale-out). Production runs `prefect server start` against PostgreSQL instead: pass
`database_url` (postgresql+asyncpg://…) and this server uses it instead of a SQLite file in its PREFECT_HOME
(tests/reliability/test_postgres.py runs the pool on PostgreSQL this way).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from flows.prefect_env import SERVER_DEFAULTS
from flows.server import server_setup

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """`prefect server start` on a free localhost port with its own PREFECT_HOME, plus workers.

    `database_url` is the server's PREFECT_API_DATABASE_CONNECTION_URL (default: SQLite in PREFECT_HOME); only
    the server process gets it, as in production, where workers and `dhf batch` know only PREFECT_API_URL.
    """

    def __init__(
        self, folder: Path, dhf_home: Path, config: Path | None = None, database_url: str | None = None
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.config = config
        self.env = {
            **os.environ,
            "DHF_HOME": str(dhf_home),
            "PREFECT_HOME": str(self.folder / "prefect-home"),
            "PREFECT_API_URL": self.url,
            "PREFECT_UI_ENABLED": "false",
        }
        # the same command and environment as `python -m flows.server` (telemetry off, the UI's API URL)
        self.server_command, self.server_env = server_setup(["--host", "127.0.0.1", "--port", str(self.port)], self.env)
        self.env = {**self.env, **SERVER_DEFAULTS}  # the CLI and the workers send no telemetry either
        if database_url:
            self.server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def dhf(self, *args: str) -> list[str]:
        config = ["--config", str(self.config)] if self.config else []
        return [sys.executable, "-m", "cli.main", *config, *args]

    def spawn(self, command: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        with (self.folder / log).open("w") as out:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env or self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.dhf(*args), cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def start(self, workers: int, timeout: float = 90) -> LocalCluster:
        """Server up and healthy, pool set up, `workers` worker processes polling it."""
        self.spawn(self.server_command, "server.log", self.server_env)
        self._wait_healthy(timeout)
        setup = self.run("pool", "setup", timeout=120)
        if setup.returncode != 0:
            raise RuntimeError(f"dhf pool setup failed: {setup.stderr[-2000:]}")
        for index in range(1, workers + 1):
            self.start_worker(f"w{index}")
        return self

    def start_worker(self, name: str) -> subprocess.Popen:
        """One more `dhf pool worker` process (named `name` in the Prefect UI and its events)."""
        worker = self.spawn(self.dhf("pool", "worker", "--name", name), f"worker-{name}.log")
        self.workers.append(worker)
        return worker

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        log = (self.folder / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"prefect server did not answer on {self.url} within {timeout:.0f} s: {log}")

    def api(self, path: str, body: dict | None = None):
        """POST to the server's REST API (filters) and return the JSON."""
        response = httpx.post(f"{self.url}/{path}", json=body or {}, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str):
        response = httpx.get(f"{self.url}/{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
