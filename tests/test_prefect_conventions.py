"""What a Prefect user expects of the factory (issue 28), against real `prefect server start`s:

- every server the project starts or documents is offline-safe: telemetry off, and the UI told where
  its API is on whatever port it runs (`python -m flows.server`, `LocalCluster`, docker-compose);
- a batch's task runs are named `render q1 [en]` exactly, and their logs give each stage's seconds in
  words, not Python reprs;
- a server-less `dhf batch` says where Prefect's temporary server keeps its records, and they are there;
- `dhf render --wait-review`: the run is `Held` with a form whose decision has no default; after an
  approval the printed report exists, the waiting is not counted as render time and its line comes
  after the progress bars; a rejection ends the run `Rejected` (Failed) and the command exits 7.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import REPO

from flows.local_cluster import LocalCluster, free_port
from flows.prefect_env import server_environment

TEXT = "The rate is 3.5% today."
REVIEW = "video: {width: 640, height: 360}\ngovernance: {review: required}\n"
SMALL = "video: {width: 640, height: 360}\n"
SCRIPT = "name: conventions\navatar: sample\nlanguages: [en]\nitems:\n  - id: q1\n    text: Thank you.\n"


def _healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no server at {url}: {log.read_text(errors='replace')[-3000:]}")


@pytest.mark.slow  # a server of its own; the default run keeps the cluster server below and the offline defaults
def test_flows_server_on_another_port_tells_its_ui_where_the_api_is_and_sends_no_telemetry(tmp_path):
    """`python -m flows.server --port P`: the UI's settings name port P (a bare `prefect server start
    --port P` names 4200), and the server's own settings say analytics off."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DO_NOT_TRACK"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "flows.server", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        _healthy(f"http://127.0.0.1:{port}/api", process, log)
        ui = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=30).json()
        assert ui["api_url"] == f"http://127.0.0.1:{port}/api", ui
        server = httpx.get(f"http://127.0.0.1:{port}/api/admin/settings", timeout=30).json()["server"]
        assert server["analytics_enabled"] is False and server["ui"]["api_url"] == ui["api_url"], server
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_every_documented_server_gets_the_same_offline_defaults():
    """docker-compose's server environment is what `server_environment` gives its published port, and
    a server listening on every interface is browsed at a real address, not 0.0.0.0."""
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    server = compose["services"]["prefect-server"]
    port = int(server["ports"][0].split(":")[0])
    expected = server_environment("localhost", port, {})
    assert {k: server["environment"][k] for k in expected} == expected
    assert server_environment("0.0.0.0", 4300, {})["PREFECT_UI_API_URL"] == "http://127.0.0.1:4300/api"
    assert server_environment("::", 4300, {"PREFECT_UI_API_URL": "https://prefect.example/api"}) == {
        "PREFECT_UI_API_URL": "https://prefect.example/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


@pytest.fixture(scope="module")
def cluster(dhf_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("conventions")
    with LocalCluster(folder / "cluster", dhf_home) as running:
        running.spawn(running.server_command, "server.log", running.server_env)  # no pool: no workers here
        _healthy(running.url, running.processes[0], running.folder / "server.log")
        yield running


def _dhf(cluster: LocalCluster, config: str, *args: str) -> list[str]:
    path = cluster.folder / ("review.yaml" if config == REVIEW else "small.yaml")
    path.write_text(config, encoding="utf-8")
    return [sys.executable, "-m", "cli.main", "--config", str(path), *args]


def test_batch_task_runs_have_stable_names_and_log_stage_seconds_in_words(cluster):
    script = cluster.folder / "conventions.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run(_dhf(cluster, SMALL, "batch", str(script), "--out", str(cluster.folder / "out"), "--quiet"),
                          cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = [r for r in cluster.api("flow_runs/filter") if r["name"] == "batch conventions"]
    tasks = cluster.api("task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})
    assert [t["name"] for t in tasks] == ["render q1 [en]"], [t["name"] for t in tasks]
    logs = cluster.api("logs/filter", {"logs": {"task_run_id": {"any_": [tasks[0]["id"]]}}})
    (line,) = [entry["message"] for entry in logs if entry["message"].startswith("q1 [en]: rendered")]
    stages = dict(re.findall(r"(\w+) (\d+\.\d\d) s", line.split("stages: ", 1)[1]))
    assert {"speech", "render", "quality", "total"} <= set(stages), line
    assert abs(sum(float(v) for k, v in stages.items() if k != "total") - float(stages["total"])) < 0.02, line
    assert "quality passed" in line and not re.search(r"True|False|None|[{}']", line), line


@pytest.mark.slow  # a temporary server again: tests/test_readme.py's serverless batch (default) reads the same records
def test_a_serverless_batch_says_where_its_records_go_and_they_are_there(cluster, tmp_path):
    """The temporary server's records outlive the process in PREFECT_HOME's database, as `dhf batch`
    says (the batch of the test above: unchanged, nothing is rendered again when run after it)."""
    env = {k: v for k, v in cluster.env.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    script = cluster.folder / "conventions.yaml"
    done = subprocess.run(_dhf(cluster, SMALL, "batch", str(script), "--out", str(cluster.folder / "out"), "--quiet"),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    database = tmp_path / "prefect-home" / "prefect.db"
    (said,) = re.findall(r"batch run (\S+) recorded by Prefect's temporary server in (\S+) ", done.stderr)
    assert said[1] == str(database), done.stderr
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT name, state_type FROM flow_run WHERE id = ?", (said[0],)).fetchall()
    assert rows == [("batch conventions", "COMPLETED")], rows


def _held(cluster: LocalCluster, process: subprocess.Popen, name: str, log: Path, timeout: float = 400) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        runs = [r for r in cluster.api("flow_runs/filter") if r["name"] == name]
        if runs and runs[0]["state_type"] == "PAUSED":
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"{name} was not held: {log.read_text(errors='replace')[-3000:]}")


def _render(cluster: LocalCluster, output: Path) -> tuple[subprocess.Popen, Path, Path]:
    stdout, stderr = output.with_suffix(".out"), output.with_suffix(".err")
    command = _dhf(cluster, REVIEW, "render", TEXT, "--avatar", "sample", "--lang", "en", "-o", str(output),
                   "--wait-review")  # fmt: skip
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(command, cwd=REPO, env=cluster.env, stdout=out, stderr=err, start_new_session=True)
    cluster.processes.append(process)
    return process, stdout, stderr


def _logs(cluster: LocalCluster, run: dict) -> str:
    """The run's Logs tab, for a failure's message."""
    return "\n".join(e["message"] for e in cluster.api("logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}}))


def _review_id(cluster: LocalCluster, run: dict) -> str:
    from config import load_settings
    from pipeline.review_store import ReviewStore

    home = Path(cluster.env["DHF_HOME"])
    (record,) = [r for r in ReviewStore(load_settings(home=home)).all() if r.flow_run_id == run["id"]]
    return record.id


def test_wait_review_holds_the_run_with_a_required_choice_and_reports_what_exists(cluster, tmp_path):
    output = tmp_path / "approved.mp4"
    started = time.monotonic()
    process, stdout, stderr = _render(cluster, output)
    run = _held(cluster, process, "render approved [en]", stderr)
    held_after = time.monotonic() - started
    assert run["state_name"] == "Held", run["state_name"]
    inputs = cluster.api(f"flow_runs/{run['id']}/input/filter", {"prefix": "held-", "limit": 10})
    schema = json.loads(next(item["value"] for item in inputs if item["key"].endswith("-schema")))
    # no default: the UI pre-selected "approve" and marked the decision "(Optional)"
    assert "decision" in schema["required"] and "default" not in schema["properties"]["decision"], schema
    time.sleep(10)  # the reviewer takes a while: not render time
    answer = {"decision": "approve", "reviewer": "dana", "comment": "checked"}
    response = httpx.post(f"{cluster.url}/flow_runs/{run['id']}/resume", json={"run_input": answer}, timeout=30)
    assert response.json()["status"] == "ACCEPT", response.text
    assert process.wait(timeout=120) == 0, stderr.read_text()[-3000:]
    printed = stdout.read_text()
    assert "approved by dana" in printed, (printed, _logs(cluster, run))
    report = Path(printed.rsplit("report: ", 1)[1].strip())
    assert report.is_file() and json.loads(report.read_text())["published"] is True, printed
    rendered = float(re.search(r"rendered in (\d+\.\d) s", printed).group(1))
    waited = float(re.search(r"after (\d+) s;", printed).group(1))
    assert rendered <= held_after + 1 and waited >= 10, (printed, held_after)
    errors = stderr.read_text()
    waiting = errors.index("waiting for review")
    assert "\r" not in errors[waiting:], errors[-2000:]  # no progress bar redrawn around or after it
    assert cluster.get(f"flow_runs/{run['id']}")["state_name"] == "Completed"


@pytest.mark.slow  # a second held render; approval stays default, rejection is also tests/reliability/test_review.py's
def test_a_rejected_review_ends_the_run_rejected_and_the_command_non_zero(cluster, tmp_path):
    output = tmp_path / "rejected.mp4"
    process, stdout, stderr = _render(cluster, output)
    run = _held(cluster, process, "render rejected [en]", stderr)
    review = cluster.run("review", "reject", _review_id(cluster, run), "--reviewer", "erin", "-m", "wrong figure")
    assert review.returncode == 0, review.stderr[-2000:]
    assert process.wait(timeout=120) == 7, stderr.read_text()[-3000:]
    assert "rejected in review" in stdout.read_text() and not output.exists()
    final = cluster.get(f"flow_runs/{run['id']}")
    assert (final["state_type"], final["state_name"]) == ("FAILED", "Rejected"), final["state"]
    assert "rejected by" in final["state"]["message"], final["state"]
